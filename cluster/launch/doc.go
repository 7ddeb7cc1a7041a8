// Package launch brings a qfleet cluster up on machines reached over SSH,
// from one cluster file: the body of 'qfleet launch', 'qfleet status',
// 'qfleet logs' and 'qfleet down', as a Go API.
//
// A cluster file (Load, Parse) lists the hosts: the address SSH dials and
// how to log in (user, key file or ssh-agent, the host key as a known_hosts
// file or a SHA256 fingerprint), the node's roles and config (a config file
// and inline settings, as 'qfleet node --config' takes them), its ports,
// and the address peers dial behind NAT. Spec is the parsed file.
//
// Launch checks every host before it touches any (pre-flight: login, host
// key, OS and architecture against the binary it would copy, ports free,
// a node already running), so one bad host means nothing started anywhere;
// then it makes the credentials the file's directory lacks (a CA, the
// gossip key, a certificate per node, as 'qfleet certs' does), copies the
// binary, credentials and a node.yaml into each host's directory, and
// starts the nodes, the seed (the learner's host) first, each so that it
// outlives the SSH session: a transient systemd service where systemd runs
// the host (systemd-run; the node's log still goes to node.log), else a
// detached process (setsid, nohup, a pid file). It waits until each node
// printed that it joined and the learner's /status lists every node.
// Launching again leaves running nodes alone (Options.Restart restarts
// them). Down stops every node, the learner's first (SIGTERM, then SIGKILL
// after the grace, and the rest of its process group); Status shows each
// node's process and the learner's /status; Logs tails a node's log.
//
// Everything on a host is a POSIX sh script run over an SSH session (sh -c,
// whatever the login shell), using only what any Linux has (uname, id, cat,
// kill, tail, sha256sum, setsid, /proc); the binary travels as a session's
// stdin into cat and the credentials and config as here-documents in the
// script, so the host needs no SFTP subsystem and no scp. Sessions are few
// (one to probe a host, one to install, one to start, then one per look at
// the node), because each starts the login's shell on the host, and a
// shell reading a slow ~/.bashrc costs a second each time. The learner's
// /status is read through the SSH connection itself (a direct-tcpip
// channel), so its dashboard may stay bound to the host's loopback.
//
// Facts about the dependencies that shaped this code:
//
//   - golang.org/x/crypto/ssh asks for ECDSA and RSA host keys before
//     ed25519 (its default HostKeyAlgorithms), unlike OpenSSH. A host with
//     all three keys (Debian makes all three) then shows its ECDSA key, and a
//     known_hosts file that OpenSSH wrote (ed25519 only) or an ed25519
//     fingerprint reads as a mismatch although nothing is wrong. The check
//     asks for the algorithms of the keys known_hosts has for the host (found
//     by asking knownhosts about a key it cannot have: its KeyError lists the
//     wanted ones), or ed25519 first with a fingerprint.
//   - knownhosts reports an unknown host and a changed key with the same
//     type, *KeyError: an empty Want is unknown, a non-empty one a mismatch.
//   - sshd (OpenSSH 9.2 here) run by hand, as the tests run it in network
//     namespaces, needs its privilege separation directory /run/sshd to
//     exist, and its own absolute path (it re-executes itself per
//     connection).
//   - dash (Debian's sh) has a kill without "--": "kill -KILL -- -PGID"
//     fails there with "Illegal number: -", so a process group is killed
//     as "kill -9 -PGID", which dash, bash and busybox all take.
//   - A detached node outlives the session only because nothing holds the
//     session's channel open: its stdin, stdout and stderr must all be
//     redirected, or sshd waits for them and the launch hangs.
package launch
