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
func Make(id string) (Env, error) {
	registry.RLock()
	factory, ok := registry.factories[id]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownEnv, id, strings.Join(IDs(), ", "))
	}
	return factory(), nil
}

// IDs returns the registered ids, sorted.
func IDs() []string {
	registry.RLock()
	ids := make([]string, 0, len(registry.factories))
	for id := range registry.factories {
		ids = append(ids, id)
	}
	registry.RUnlock()
	slices.Sort(ids)
	return ids
}
