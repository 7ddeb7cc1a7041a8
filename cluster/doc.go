// Package cluster joins qfleet nodes into one training cluster.
//
// A node is one process: one actor system, one protoactor remote endpoint and
// one memberlist member. Membership (membership.go) gossips each node's roles,
// remote address, epoch and runner count as memberlist metadata and keeps a
// member table that follows joins, graceful leaves and failures. RunnerLadder
// (ladder.go) places a runner node's runners in the cluster-wide ε ladder
// from that table. Directory (directory.go)
// turns that table into the PIDs the roles talk to, and tells an actor system
// when a node is gone so that remote watchers fire at once instead of after
// gRPC notices. remote.go and tls.go set protoactor remote up for real links:
// receive limits sized to batches, keepalive, and transport credentials that
// are always explicit.
//
// Virtual actors (protoactor's own cluster package) are deliberately not used:
// cluster/README.md says why. Each role has a well-known name on its node
// (actors.ReplayName, ...), so a member's remote address is all a PID needs.
package cluster
