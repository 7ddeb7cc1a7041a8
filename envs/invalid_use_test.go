package envs

import (
	"strings"
	"testing"
)

// Every classic-control env refuses misuse loudly: Step before Reset and an
// action outside [0, NumActions) panic with a message that says so (a
// silent wrong step would corrupt a whole run's data).
func TestClassicControlInvalidUse(t *testing.T) {
	for _, c := range []struct {
		id  string
		new func() Env
	}{
		{"CartPole-v1", func() Env { return NewCartPole() }},
		{"Acrobot-v1", func() Env { return NewAcrobot() }},
		{"MountainCar-v0", func() Env { return NewMountainCar() }},
	} {
		mustPanic := func(name, want string, f func()) {
			t.Helper()
			defer func() {
				t.Helper()
				r := recover()
				if msg, _ := r.(string); !strings.Contains(msg, want) {
					t.Errorf("%s %s: panic %v, want a message containing %q", c.id, name, r, want)
				}
			}()
			f()
		}
		mustPanic("Step before Reset", "before Reset", func() { c.new().Step(0) })
		e := c.new()
		e.Reset(0)
		n := e.Spec().NumActions
		mustPanic("action NumActions", "invalid action", func() { e.Step(n) })
		mustPanic("action -1", "invalid action -1", func() { e.Step(-1) })
	}
}
