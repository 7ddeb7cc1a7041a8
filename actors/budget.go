package actors

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/nets"
)

// ErrMemoryBudget: the node would need more memory than it may use.
var ErrMemoryBudget = errors.New("over the memory budget")

// MemoryItem is one part of what a node will hold: Units of PerUnit bytes,
// sized by the config key Setting.
type MemoryItem struct {
	What    string
	Setting string
	Units   uint64
	PerUnit uint64
}

// Bytes is the item's size.
func (i MemoryItem) Bytes() uint64 { return i.Units * i.PerUnit }

// MemoryEstimate is what a node with some roles will hold, estimated from
// the config before anything is allocated (so a typo of a few zeros is
// refused in milliseconds, instead of growing until the kernel kills it).
type MemoryEstimate struct {
	Items []MemoryItem
}

// Total is the sum of the items.
func (e MemoryEstimate) Total() uint64 {
	var n uint64
	for _, i := range e.Items {
		n += i.Bytes()
	}
	return n
}

// baseRuntimeBytes is the Go runtime, protoactor, gRPC and gorgonia's
// packages before any role holds data (measured: ~40 MB RSS at start).
const baseRuntimeBytes = 64 << 20

// learnerGraphFactor covers what gorgonia's tape machine keeps per update:
// activations and their gradients of the online net (forward, backward),
// the target net's forward and the double-DQN online forward on the next
// observations, each batch × width, plus the copies it makes (measured
// within this factor on CartPole and MinAtar).
const learnerGraphFactor = 8

// EstimateMemory estimates what a node with roles holds for env under cfg.
// snapshots: the replay copies its table to write a snapshot.
func EstimateMemory(env envs.Spec, cfg Config, roles []string, snapshots bool) MemoryEstimate {
	sp := StackedSpec(env, cfg) // what the runners act on and send
	net := NetSpec(env, cfg)
	params := uint64(net.NumParams())
	obs := uint64(sp.ObsSize())
	e := MemoryEstimate{Items: []MemoryItem{{What: "Go runtime and libraries", Units: 1, PerUnit: baseRuntimeBytes}}}
	transition := 8*obs + 20 // obs and next obs as float32, action, reward, discount, key
	if slices.Contains(roles, RoleReplay) {
		e.Items = append(e.Items, replayItems(env, cfg, snapshots)...)
	}
	if slices.Contains(roles, RoleLearner) {
		width := uint64(netWidth(net))
		e.Items = append(e.Items,
			MemoryItem{What: "learner: online, target, gradient and Adam's two moments", Setting: "hidden",
				Units: params, PerUnit: 5 * 4},
			MemoryItem{What: "learner: activations and gradients of an update", Setting: "batch_size",
				Units: uint64(cfg.BatchSize), PerUnit: learnerGraphFactor * 4 * width},
			MemoryItem{What: "learner: sample batches in flight", Setting: "prefetch_batches",
				Units: uint64(cfg.PrefetchBatches * cfg.BatchSize), PerUnit: transition})
		if cfg.EvalEvery > 0 {
			e.Items = append(e.Items, MemoryItem{What: "learner: recent publications held for the best checkpoint", Setting: "eval_every",
				Units: uint64(newBestKeeper(int(params)).size), PerUnit: 4 * params})
		}
	}
	if slices.Contains(roles, RoleBroadcaster) {
		e.Items = append(e.Items, MemoryItem{What: "broadcaster: newest weights and their packed chunks", Setting: "hidden",
			Units: params, PerUnit: 3 * 4})
	}
	if slices.Contains(roles, RoleRunner) {
		perRunner := 2*4*params + // behaviour net and the weights being assembled
			uint64(cfg.OutboxLimit+cfg.CreditWindow+cfg.SendBatch)*transition + // outbox, unacknowledged and building batches
			64<<10 // actor, env and scratch
		e.Items = append(e.Items, MemoryItem{What: "runners: network copies and experience buffers", Setting: "runners",
			Units: uint64(cfg.Runners), PerUnit: perRunner})
		// Each env of a runner's vector: its observation in the VecEnv, its
		// final one, the runner's copy, its n-step buffer, one vector
		// step's burst of transitions past the outbox limit, the batched
		// forward pass's activations, and the env itself.
		act := uint64(netWidth(net))
		for _, c := range net.ConvLayers() {
			act += uint64(c.OutHeight() * c.OutWidth() * (c.Kernel*c.Kernel*c.Channels + 1)) // im2col's patches
		}
		perEnv := (3+uint64(cfg.NStep))*4*obs + uint64(cfg.NStep)*transition + 4*act + 1<<10
		e.Items = append(e.Items, MemoryItem{What: "runners: their envs' observations and n-step buffers", Setting: "envs_per_runner",
			Units: uint64(cfg.Runners) * uint64(max(cfg.EnvsPerRunner, 1)), PerUnit: perEnv})
	}
	return e
}

// replayItems are the replay's table (NewTable or NewFrameTable, with the
// sum tree when prioritized) and, for packed frames, the recent-frame index.
func replayItems(env envs.Spec, cfg Config, snapshots bool) []MemoryItem {
	frame, capacity := uint64(env.ObsSize()), uint64(cfg.ReplayCapacity)
	k := uint64(max(cfg.FrameStack, 1))
	row := 8*k*frame + 20 // obs and next obs as float32, action, reward, discount, key
	items := []MemoryItem{{What: "replay: sampling scratch and small state", Units: 1, PerUnit: 64 << 10}}
	if len(replayOptions(env, cfg)) > 0 {
		packed := uint64(frameBytes(env.ObsDType, int(frame)))
		if k > 1 {
			// Stacked: about one frame a row in the ring (stackedSlots), 2k
			// frame ids and the row's floor.
			row = packed*17/16 + 16*k + 28
			items = append(items, MemoryItem{What: "replay: frames of the deduplication window", Units: recentFrames, PerUnit: 2*packed + 96})
		} else {
			// Packed frames: two per row in the ring, plus two frame ids.
			row = 2*packed + 36
			items = append(items, MemoryItem{What: "replay: recent frames kept for deduplication", Units: recentFrames, PerUnit: 2*packed + 96})
		}
	}
	if cfg.Prioritized {
		leaves := uint64(1)
		for leaves < capacity {
			leaves <<= 1
		}
		row += (2*leaves*24 + capacity - 1) / capacity // sum tree nodes: a sum and min/max extrema each
	}
	if snapshots {
		row *= 2 // the copy a snapshot writes from
	}
	return append([]MemoryItem{{What: fmt.Sprintf("replay table (%s transitions)", env.ID), Setting: "replay_capacity",
		Units: capacity, PerUnit: row}}, items...)
}

// Check returns an error wrapping ErrMemoryBudget when the estimate exceeds
// limit, naming the setting behind the largest item, its bytes per unit,
// the total and the limit.
func (e MemoryEstimate) Check(limit uint64) error {
	total := e.Total()
	if limit == 0 || total <= limit {
		return nil
	}
	big := e.Items[0]
	for _, i := range e.Items {
		if i.Bytes() > big.Bytes() {
			big = i
		}
	}
	part := fmt.Sprintf("%s = %d × %s each (%s) = %s is the largest part", big.Setting, big.Units,
		humanize.IBytes(big.PerUnit), big.What, humanize.IBytes(big.Bytes()))
	if big.Setting == "" {
		part = fmt.Sprintf("%s alone take %s", big.What, humanize.IBytes(big.Bytes()))
	}
	return fmt.Errorf("%w: %s; the node would hold %s, over its limit of %s (--max-memory)",
		ErrMemoryBudget, part, humanize.IBytes(total), humanize.IBytes(limit))
}

// String is the estimate as config print shows it, one item a line.
func (e MemoryEstimate) String() string {
	var b strings.Builder
	for _, i := range e.Items {
		fmt.Fprintf(&b, "%10s  %s", humanize.IBytes(i.Bytes()), i.What)
		if i.Setting != "" {
			fmt.Fprintf(&b, " (%s: %d × %s)", i.Setting, i.Units, humanize.IBytes(i.PerUnit))
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%10s  total", humanize.IBytes(e.Total()))
	return b.String()
}

// DefaultMemoryShare is the share of the machine's memory (or of the
// cgroup's limit) a node may plan to use by default.
const DefaultMemoryShare = 0.8

// MachineMemory is the memory this process may use: the cgroup limit (v2
// memory.max, or v1 memory.limit_in_bytes) where there is one, else the
// machine's MemTotal; 0 when neither can be read.
func MachineMemory() uint64 {
	total := memTotal()
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
			return v // "max" and v1's huge "no limit" value fall through
		}
	}
	return total
}

func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// DefaultMaxMemory is DefaultMemoryShare of MachineMemory (0: unknown, no
// limit).
func DefaultMaxMemory() uint64 {
	return uint64(float64(MachineMemory()) * DefaultMemoryShare)
}

// netWidth is the activations of one observation through net: its input,
// the conv's feature maps, the hidden layers and the Q-values.
func netWidth(net nets.Spec) int {
	width := net.Inputs + net.Outputs
	for _, h := range net.Hidden {
		width += h
	}
	for _, c := range net.ConvLayers() {
		width += c.Height * c.Width * c.Filters // (an upper bound of) its feature maps
	}
	return width
}
