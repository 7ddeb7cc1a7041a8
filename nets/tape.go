package nets

import (
	"fmt"
	"reflect"
	"unsafe"

	G "gorgonia.org/gorgonia"
)

// tapeRunner replays a compiled gorgonia TapeMachine program without Reset and without
// RunAll. Both cost more than the arithmetic at DQN sizes (measured, CartPole net):
//
//   - Reset drops every register, so each run reallocates every intermediate and gradient
//     tensor (hundreds of allocations per update, GC ~15% of CPU). Without Reset each op
//     finds its previous output in its register and writes into it (UsePreallocDo).
//   - RunAll locks the OS thread and starts a fresh goroutine per call, which hands the
//     run to another thread (futex wake-ups ~17% of CPU) and grows a new stack each time.
//
// The machine's exported Run(fragment) executes instructions on the calling goroutine, but
// fragment and program.instructions are unexported, so the program is taken by reflection
// once, at construction. This is tied to gorgonia v0.9.18's tapeMachine; newTapeRunner
// reports failure (and the caller falls back to Reset+RunAll) if the layout ever differs.
// Tests check the fast path against Reset+RunAll bit for bit over many updates.
type tapeRunner struct {
	run  reflect.Value   // the machine's Run method
	args []reflect.Value // {program.instructions}
}

func newTapeRunner(vm G.VM) (*tapeRunner, error) {
	v := reflect.ValueOf(vm)
	prog := v.MethodByName("Prog")
	run := v.MethodByName("Run")
	if !prog.IsValid() || !run.IsValid() {
		return nil, fmt.Errorf("nets: %T has no Prog/Run", vm)
	}
	outs := prog.Call(nil)
	if len(outs) != 1 || outs[0].Kind() != reflect.Pointer || outs[0].IsNil() {
		return nil, fmt.Errorf("nets: unexpected %T.Prog()", vm)
	}
	field := outs[0].Elem().FieldByName("instructions")
	if !field.IsValid() || field.Kind() != reflect.Slice {
		return nil, fmt.Errorf("nets: gorgonia program has no instructions slice")
	}
	if run.Type().NumIn() != 1 || run.Type().In(0) != field.Type() {
		return nil, fmt.Errorf("nets: %T.Run does not take %v", vm, field.Type())
	}
	// A Value read from an unexported field cannot be passed to Call; re-derive it from its
	// address (the slice header is only read).
	instrs := reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem()
	return &tapeRunner{run: run, args: []reflect.Value{instrs}}, nil
}

// exec runs the whole program once.
func (r *tapeRunner) exec() error {
	out := r.run.Call(r.args)
	if err, _ := out[0].Interface().(error); err != nil {
		return err
	}
	return nil
}
