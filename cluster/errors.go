package cluster

import "errors"

var (
	// ErrInvalidConfig wraps every Config.Validate failure; the message names
	// the field and the rule it breaks.
	ErrInvalidConfig = errors.New("invalid cluster config")

	// ErrJoin means none of the seed addresses could be reached (or all of
	// them refused us, e.g. because our cluster key or label differs).
	ErrJoin = errors.New("cannot join the cluster")

	// ErrMetaTooLarge means the node metadata (roles, remote address, epoch)
	// encodes to more than memberlist's 512-byte limit. memberlist panics in
	// that case; Start and Leave check first and return this instead.
	ErrMetaTooLarge = errors.New("node metadata too large")

	// ErrShutdown is returned by Membership methods called after Shutdown.
	ErrShutdown = errors.New("membership is shut down")

	// ErrClusterKey means a cluster key file is unreadable or holds no
	// usable AES key.
	ErrClusterKey = errors.New("bad cluster key")

	// ErrRemoteListen means the protoactor remote could not start, most often
	// because its address is already in use.
	ErrRemoteListen = errors.New("cannot start remote")

	// ErrTLS means certificates or keys could not be loaded or do not fit
	// together.
	ErrTLS = errors.New("bad TLS material")

	// ErrCertExists is returned by the certificate generators instead of
	// overwriting an existing file (a CA key in particular must never be
	// replaced by accident: every node certificate depends on it).
	ErrCertExists = errors.New("certificate file already exists")
)
