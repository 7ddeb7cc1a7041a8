package envs

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrUnknownEnv is wrapped by the error Make returns for an id nobody
// registered; test for it with errors.Is.
var ErrUnknownEnv = errors.New("unknown environment")

var registry = struct {
	sync.RWMutex
	factories map[string]func() Env
}{factories: make(map[string]func() Env)}

// Register makes an environment available to Make under id. Each Make call
// runs factory once, so factory must return a fresh, independent Env.
// Register is meant for package init functions; like database/sql.Register it
// panics on an empty id, a nil factory or an id registered twice, since each
// is a programming error that would otherwise surface far away.
func Register(id string, factory func() Env) {
	if id == "" {
		panic("envs: Register with an empty id")
	}
	if factory == nil {
		panic("envs: Register " + id + " with a nil factory")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.factories[id]; dup {
		panic("envs: Register called twice for " + id)
	}
	registry.factories[id] = factory
}

// Make returns a new instance of the environment registered under id. For an
// unknown id the error wraps ErrUnknownEnv and names the id and every known
// one, so a command-line typo explains itself.
//
// An env registered with RegisterVec is made as a vector of one, seen as an
// Env (Single): its process or connection lasts until Close(env).
func Make(id string) (Env, error) {
	if factory, ok := goFactory(id); ok {
		return factory(), nil
	}
	vecRegistry.RLock()
	vf, vec := vecRegistry.factories[id]
	vecRegistry.RUnlock()
	if vec {
		v, err := checkedVec(id, vf, 1)
		if err != nil {
			return nil, err
		}
		return Single(v), nil
	}
	return nil, unknownEnv(id)
}

// goFactory is the factory Register gave id, if any.
func goFactory(id string) (func() Env, bool) {
	registry.RLock()
	defer registry.RUnlock()
	factory, ok := registry.factories[id]
	return factory, ok
}

// unknownEnv is the error for an id neither registry knows.
func unknownEnv(id string) error {
	return fmt.Errorf("%w %q (known: %s)", ErrUnknownEnv, id, strings.Join(IDs(), ", "))
}

// IDs returns the registered ids of both registries, sorted.
func IDs() []string {
	registry.RLock()
	ids := make([]string, 0, len(registry.factories))
	for id := range registry.factories {
		ids = append(ids, id)
	}
	registry.RUnlock()
	vecRegistry.RLock()
	for id := range vecRegistry.factories {
		ids = append(ids, id)
	}
	vecRegistry.RUnlock()
	slices.Sort(ids)
	return ids
}

// vecRegistry holds the envs that exist only as vectors: external envs
// (another process or host, over the env protocol), registered at run time
// once their spec is known from the handshake.
var vecRegistry = struct {
	sync.RWMutex
	specs     map[string]Spec
	factories map[string]func(n int) (VecEnv, error)
}{specs: map[string]Spec{}, factories: map[string]func(n int) (VecEnv, error){}}

// RegisterVec makes an env that comes as a vector (an external env) known
// under spec.ID: MakeVec builds its vectors with factory, SpecOf answers
// with spec without starting anything, and Make gives a vector of one seen
// as an Env. Unlike Register it returns an error, for an id taken by either
// registry: it is called at run time with an id from outside.
func RegisterVec(spec Spec, factory func(n int) (VecEnv, error)) error {
	if spec.ID == "" || factory == nil {
		return errors.New("envs: RegisterVec needs a spec with an id and a factory")
	}
	_, taken := goFactory(spec.ID)
	vecRegistry.Lock()
	defer vecRegistry.Unlock()
	if _, dup := vecRegistry.factories[spec.ID]; dup || taken {
		return fmt.Errorf("env id %q is registered already", spec.ID)
	}
	vecRegistry.specs[spec.ID], vecRegistry.factories[spec.ID] = spec, factory
	return nil
}

// MakeVec returns a vector of n envs of id: an external env's own vector,
// or n Go envs stepped in turn (NewVec).
func MakeVec(id string, n int) (VecEnv, error) {
	vecRegistry.RLock()
	factory, ok := vecRegistry.factories[id]
	vecRegistry.RUnlock()
	if ok {
		return checkedVec(id, factory, n)
	}
	one, ok := goFactory(id)
	if !ok {
		return nil, unknownEnv(id)
	}
	return NewVec(n, func() (Env, error) { return one(), nil })
}

// SpecOf is the spec of env id, without stepping it (for an external env,
// without starting one).
func SpecOf(id string) (Spec, error) {
	vecRegistry.RLock()
	spec, ok := vecRegistry.specs[id]
	vecRegistry.RUnlock()
	if ok {
		return spec, nil
	}
	e, err := Make(id)
	if err != nil {
		return Spec{}, err
	}
	return e.Spec(), nil
}

// checkedVec makes a registered vector and checks that it is still the env
// registered: an external env's program can change between the handshake
// that registered it and a later start.
func checkedVec(id string, factory func(n int) (VecEnv, error), n int) (VecEnv, error) {
	v, err := factory(n)
	if err != nil {
		return nil, err
	}
	vecRegistry.RLock()
	want := vecRegistry.specs[id]
	vecRegistry.RUnlock()
	if got := v.Spec(); got.ID != want.ID || !slices.Equal(got.ObsShape, want.ObsShape) || got.ObsDType != want.ObsDType || got.NumActions != want.NumActions {
		v.Close()
		return nil, fmt.Errorf("env %s changed since it was registered: now %s %v %s with %d actions, was %v %s with %d actions",
			id, got.ID, got.ObsShape, got.ObsDType, got.NumActions, want.ObsShape, want.ObsDType, want.NumActions)
	}
	return v, nil
}
