// Package minatar is MinAtar (Young & Tian 2019; kenjyoung/MinAtar @
// 4241f24, version 1.0.15) in Go: five miniature Atari games on a 10x10
// grid, registered with envs as
//
//	MinAtar/Breakout-v0  MinAtar/Asterix-v0  MinAtar/Freeway-v0
//	MinAtar/Seaquest-v0  MinAtar/SpaceInvaders-v0
//
// with all 6 actions (0 no-op, 1 left, 2 up, 3 right, 4 down, 5 fire), and
// the same names with -v1 for each game's minimal action set (action i of a
// -v1 env is minimal[i] of the full set), as minatar/gym.py registers them.
// Importing the package registers them: import _ "github.com/qfleet/qfleet/envs/minatar".
//
// The games follow the reference source rule for rule, quirks included
// (they are listed in each game's file and in the design's
// reference/minatar.md); the golden tests replay episodes recorded from the
// Python implementation step by step.
//
// Wrapper behaviour, as minatar.Environment with its defaults:
//   - Sticky actions with p = 0.1: every Step first draws u = Float64(); if
//     u < p the previous applied action is repeated. The draw happens on
//     every step, with p = 0 and after termination too. The remembered
//     action starts at 0 and is not cleared by Reset.
//   - Difficulty ramping on (Asterix, Seaquest and Space Invaders ramp).
//   - Observation: the 10x10xC boolean state flattened channel-last, index
//     (y*10+x)*C + c, as 0/1 float32; y = 0 is the top row.
//   - No time limit: MaxEpisodeSteps is 0 and truncated is always false.
//     Freeway's own 2500-step limit ends its episodes as terminations, after
//     exactly 2501 steps, as in the reference.
//   - After termination Step returns reward 0 and terminated = true.
//
// Randomness: every draw, the sticky check included, comes from one Rand in
// the reference's order (the reference shares one numpy RandomState between
// the wrapper and the game). Reset(seed) seeds a PCG generator; it does not
// reproduce numpy's streams. Env.SetRand injects another source, such as a
// recorded sequence of reference draws.
//
// RewardThreshold in each Spec is DQN's final return in the MinAtar paper
// (see rewardThresholds), since MinAtar defines no "solved" score.
package minatar
