package actors

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/qfleet/qfleet/cluster/hostile"
	"github.com/qfleet/qfleet/messages"
)

// fuzzSnapshotSource is a real snapshot: rows transitions of obsSize values
// inserted into a table of kind (fuzzTable*) and capacity, then captured.
// Binary tables get 0/1 observations, prioritized ones priorities.
func fuzzSnapshotSource(rows, obsSize, capacity, kind int) *messages.ReplaySnapshot {
	tb := fuzzTable(obsSize, capacity, kind)
	if rows > 0 {
		b := batchOf(0, rows, obsSize)
		if kind == fuzzTableBinary {
			for i := range b.Observations {
				b.Observations[i], b.NextObservations[i] = float32(i%3%2), float32(i%5%2)
			}
		}
		if kind == fuzzTablePrioritized {
			for i := range rows {
				b.Priorities = append(b.Priorities, float32(i%7)*0.5)
			}
		}
		tb.Insert(b)
	}
	return tb.capture().encode("CartPole-v1")
}

// fuzzSnapshotArray is array field f (0..9) of s.
func fuzzSnapshotArray(s *messages.ReplaySnapshot, f int) *[]byte {
	return [...]*[]byte{&s.Observations, &s.NextObservations, &s.PackedObservations, &s.PackedNextObservations,
		&s.Actions, &s.Rewards, &s.Discounts, &s.Keys, &s.Priorities, &s.RngState}[f%10]
}

// Ops of a FuzzSnapshotRestore script (op % fsOps). Each op is 12 bytes: op,
// field, a 16-bit offset and a 64-bit value.
const (
	fsSize     = iota // size = value
	fsObsSize         // obs_size = value
	fsInserted        // inserted = value
	fsTruncate        // array cut to value % (len+1) bytes
	fsAppend          // array grows by value%17 bytes
	fsWrite32         // 4 bytes of value at offset (a float32 or uint32 of the row)
	fsWrite64         // 8 bytes of value at offset (a key or priority)
	fsClear           // array emptied
	fsOps
)

// FuzzSnapshotRestore restores a real snapshot, changed as a script says
// (sizes, observation size, insert count, array lengths, any value: NaN and
// infinite floats, actions the env does not have, keys out of order,
// priorities the sum tree refuses), into an empty table of each kind and
// capacity: a snapshot that does not fit is an error that leaves the table
// empty; one that restores gives a table as Insert would have made it
// (fuzzRestore says what that means).
func FuzzSnapshotRestore(f *testing.F) {
	f.Fuzz(func(t *testing.T, rows, obsSize, capacity uint8, kinds uint8, script []byte) {
		d := 1 + int(obsSize%16)
		srcKind, dstKind := int(kinds%fuzzTableKinds), int(kinds/fuzzTableKinds%fuzzTableKinds)
		s := fuzzSnapshotSource(int(rows), d, 1+int(capacity%64), srcKind)
		for step := 0; len(script) >= 12; step++ {
			op, field := script[0]%fsOps, int(script[1])
			off, value := int(binary.LittleEndian.Uint16(script[2:4])), binary.LittleEndian.Uint64(script[4:12])
			script = script[12:]
			a := fuzzSnapshotArray(s, field)
			switch op {
			case fsSize:
				s.Size = uint32(value)
			case fsObsSize:
				s.ObsSize = uint32(value)
			case fsInserted:
				s.Inserted = value
			case fsTruncate:
				*a = (*a)[:value%uint64(len(*a)+1)]
			case fsAppend:
				*a = append(*a, make([]byte, value%17)...)
			case fsWrite32:
				if len(*a) >= 4 {
					binary.LittleEndian.PutUint32((*a)[4*(off%(len(*a)/4)):], uint32(value))
				}
			case fsWrite64:
				if len(*a) >= 8 {
					binary.LittleEndian.PutUint64((*a)[8*(off%(len(*a)/8)):], value)
				}
			case fsClear:
				*a = nil
			}
		}
		fuzzRestore(t, s, d, 1+int(capacity/64), dstKind)
	})
}

// fuzzRestoreSeeds are the committed corpus of FuzzSnapshotRestore: each
// kind of table into each, wrapped and not, smaller and larger, and each
// kind of change once.
func fuzzRestoreSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	op := func(o, field byte, off uint16, value uint64) []byte {
		b := append([]byte{o, field}, binary.LittleEndian.AppendUint16(nil, off)...)
		return binary.LittleEndian.AppendUint64(b, value)
	}
	for src := range uint8(fuzzTableKinds) {
		for dst := range uint8(fuzzTableKinds) {
			kinds := src + fuzzTableKinds*dst
			seeds[fmt.Sprintf("clean-%d-into-%d", src, dst)] = hostile.CorpusEntry(uint8(20), uint8(3), uint8(8+64*1), kinds, []byte{})
			seeds[fmt.Sprintf("clean-wrapped-%d-into-%d-smaller", src, dst)] = hostile.CorpusEntry(uint8(50), uint8(8), uint8(20), kinds, []byte{})
		}
	}
	seeds["empty"] = hostile.CorpusEntry(uint8(0), uint8(3), uint8(200), uint8(0), []byte{})
	nan := uint64(math.Float32bits(float32(math.NaN())))
	for name, script := range map[string][]byte{
		"size-huge":          op(fsSize, 0, 0, 1<<32-1),
		"size-plus-one":      op(fsSize, 0, 0, 21),
		"obs-size-other":     op(fsObsSize, 0, 0, 5),
		"inserted-below":     op(fsInserted, 0, 0, 3),
		"inserted-huge":      op(fsInserted, 0, 0, math.MaxUint64),
		"obs-cut":            op(fsTruncate, 0, 0, 7),
		"actions-longer":     op(fsAppend, 4, 0, 4),
		"reward-nan":         op(fsWrite32, 5, 3, nan),
		"discount-two":       op(fsWrite32, 6, 1, uint64(math.Float32bits(2))),
		"obs-inf":            op(fsWrite32, 0, 9, uint64(math.Float32bits(float32(math.Inf(1))))),
		"action-beyond":      op(fsWrite32, 4, 2, 1000),
		"key-out-of-order":   op(fsWrite64, 7, 4, 99),
		"priority-nan":       op(fsWrite64, 8, 1, math.Float64bits(math.NaN())),
		"priority-negative":  op(fsWrite64, 8, 1, math.Float64bits(-1)),
		"priority-zero":      op(fsWrite64, 8, 0, 0),
		"priority-huge":      op(fsWrite64, 8, 0, math.Float64bits(1e300)),
		"priorities-cleared": op(fsClear, 8, 0, 0),
		"observations-gone":  op(fsClear, 0, 0, 0),
		"packed-cut":         op(fsTruncate, 2, 0, 5),
	} {
		// 20 rows through a table of 4 into one of 4: every row of the
		// snapshot is restored, so every change matters. A prioritized
		// source and a binary one, both into a prioritized table.
		seeds[name] = hostile.CorpusEntry(uint8(20), uint8(3), uint8(3+64*3), uint8(fuzzTablePrioritized+fuzzTableKinds*fuzzTablePrioritized), script)
		seeds[name+"-binary"] = hostile.CorpusEntry(uint8(20), uint8(3), uint8(3+64*3), uint8(fuzzTableBinary+fuzzTableKinds*fuzzTablePrioritized), script)
	}
	return seeds
}

func TestFuzzSnapshotRestoreCorpus(t *testing.T) {
	hostile.CheckCorpus(t, "FuzzSnapshotRestore", fuzzRestoreSeeds())
}
