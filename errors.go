package qfleet

// UsageError is a run refused before it started because of what it was
// given: a setting out of its range, a file that does not fit, a directory
// that cannot be written, a config bigger than the memory budget. Nothing
// was written and no actor started; the command exits 2 on it. Messages
// name settings by their flags (the config keys with - for _).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }
