// Package wire is the codec for what crosses the links between hosts, where
// bandwidth is the scarce thing: ExperienceBatch ⇄ PackedExperience
// (PackExperience, UnpackExperience) and Weights ⇄ WeightsChunk
// (NewWeightsPacker, WeightsAssembler). Messages between actors of one
// process are never encoded.
//
// # Experience payload
//
// PackedExperience.payload. Integers are little endian, "uvarint" is
// encoding/binary's; c = count, d = obs_size. The layout:
//
//	header     byte layout version (1)
//	           byte flags: bit 0 priorities present; bit 1 observations sequential
//	                (FRAMES only: transition i's observation is frame i); bit 2
//	                reward/discount palette
//	           byte action width w (0..32): bits.Len of the largest action
//	           FRAMES only: uvarint F (distinct rows), uvarint n (stride, 1..64)
//	rows, high R rows of d values: R = F frames with FRAMES (each distinct row,
//	           by float32 bits, once), else R = 2c (the c observations, then the
//	           c next observations). A value is its float32 bits, or with FLOAT16
//	           its IEEE half-float bits (rounded to nearest even). Column by
//	           column, each value is coded as the difference from the value above
//	           it (previous row; row 0 from 0), taken on the bits mapped to
//	           integers in the floats' order (ordered32) and zigzagged,
//	           then split into byte planes, most significant first (value at
//	           row r, column j at j·R + r in each plane). This section holds the
//	           high half of the planes (1 of 2 for half floats, 2 of 4 for float32).
//	obs codes  FRAMES without the sequential flag: c uvarints, 0 = the next
//	           frame no earlier observation used, k+1 = frame k.
//	next codes FRAMES only: c uvarints for transition i's next observation:
//	           0 = the observation frame of transition i+n (the n-step pattern),
//	           1 = the next frame not used before (frames after the observation
//	               frames, in order of first use: batch tails, terminal rows),
//	           2 = transition i−1's next frame (an episode-end burst),
//	           k+3 = frame k. Every frame must be used.
//	actions    c values of w bits, packed LSB first: ⌈c·w/8⌉ bytes
//	rewards,   palette flag: uvarint P (1..min(c,256)), P (reward, discount)
//	discounts      float32 pairs, c bytes of pair index; else c float32 rewards,
//	               c float32 discounts
//	priorities c float32 if flag bit 0
//	rows, low  the low half of the row planes: mantissa noise, last so that
//	           zstd can leave it out
//
// CODEC_ZSTD: the payload is a mode byte, then for mode 0 the whole layout as
// one zstd frame, for mode 1 a uvarint m, a zstd frame of m bytes holding the
// layout up to the low row planes, and those planes raw (zstd has one literal
// entropy table per block, and the noise spoils it for the rest). The packer
// uses mode 1 whenever there are low row planes, mode 0 otherwise. Frames are
// single-segment, carry their content size and no checksum, and leave out
// the 4-byte magic number (as zstd's ZSTD_f_zstd1_magicless does).
//
// A typical n-step batch thus has all-zero codes, a one-entry palette and one
// frame per transition: with FRAMES+FLOAT16+ZSTD a CartPole transition takes
// about 9 bytes on the wire, proto fields included.
//
// # Stacked frames payload
//
// A batch with frame_stack k > 1 (each observation the env's last k frames,
// channel-last: value c of frame j at pixel p at (p·k + j)·C + c) whose
// observation values are all whole numbers 0..255 goes with
// CODEC_STACKED_FRAMES (and CODEC_ZSTD), when Options.Frames is set; other
// batches, stacked or not, go as above. Consecutive stacks of an env share
// k−1 frames and a next observation is an observation n steps on, so this
// layout sends each distinct frame (not observation) once, as bytes coded
// against the frame before it, and the stacks as references to frames.
// k = frame_stack (2..64; PackedExperience carries it for every codec),
// f = obs_size/k values a frame, c = count; stacks are numbered t = 0..2c−1
// (observation i is t = i, next observation i is t = c+i), slots j = 0..k−1
// oldest first; a "column" is the observations or the next observations.
//
//	header     byte layout version (1)
//	           byte flags: bit 0 priorities present; bit 2 reward/discount palette
//	           byte action width w (0..32)
//	           byte frame transform: 0 plain, 1 difference (byte minus the
//	                base's, mod 256), 2 XOR with the base
//	           uvarint C: channels a frame (divides f; the packer finds it,
//	                as the batch does not say it, by looking for a later stack
//	                holding the first's frames shifted; any C decodes exactly)
//	           uvarint F: distinct frames (1..2ck)
//	           uvarint s: shift stride (1..64): stack t is usually stack t−s
//	                shifted by one frame (the number of envs taking turns)
//	           uvarint n: next stride (1..64): next observation i is usually
//	                observation i+n (n-step returns: n times the envs)
//	refs       2ck uvarints, stack by stack, slot by slot, each naming the
//	           slot's frame:
//	           0 = the next frame not used before (frames are numbered in
//	               order of first use),
//	           1 = slot j−1 of this stack (a new episode's stack repeats its
//	               first frame),
//	           2 = slot j+1 of stack t−s in the same column (the shift),
//	           3 = slot j of stack t−1 in the same column (an episode end's
//	               burst of transitions shares one next observation),
//	           4 = next observations: slot j of observation i+n,
//	           x+5 = frame x (already used).
//	           A code that points outside the batch or its column is an error;
//	           every frame must be used. A runner's stream thus has the
//	           codes 2…2 0 per observation and 4…4 per next observation,
//	           one repeated pattern that zstd reduces to a few bytes.
//	frames     F·f bytes: frame x's values (value c of pixel p at p·C + c),
//	           transformed against its base: the frame in slot j−1 of the
//	           stack where x is first used when j > 0 (its env's previous
//	           frame), else frame x−1, and zeros for frame 0.
//	actions, rewards, discounts and priorities as in the experience layout.
//
// CODEC_ZSTD: a mode byte 0 and the whole layout as one magicless zstd frame
// (at SpeedBetterCompression: frame differences are mostly zeros, and
// bytes, not the encoder's time, are scarce on the links pixels cross).
// The packer codes frames with XOR: on CartPolePixels-v1 it was a little
// smaller than the difference, and plain frames 6-35% larger
// (BENCHMARKS.md, "Pixels on the wire": 9-18 bytes a transition instead of
// 56,448 raw, 26-48 times fewer than LZ4 or PNG per stacked observation).
//
// # Weights payload
//
// Chunk i carries parameters [i·S, min((i+1)·S, n)) with S = max(1,
// chunkBytes/4), so each chunk decodes on its own as it arrives (a runner
// does not wait for the last chunk to start decoding, and the broadcaster's
// first chunk leaves before the last is packed): the segment's float32 bit
// patterns, XORed with the base version's (CODEC_DELTA), split into 4 byte
// planes most significant first; with CODEC_ZSTD one magicless zstd frame of
// that. The base of a delta has the chunk's term and version base_version.
//
// # Hostile input
//
// Decoding never trusts the input: every count and length is checked before
// anything is allocated, zstd output is bounded by what count and obs_size
// can legitimately need (and MaxBytes), and errors name the problem.
package wire
