"""Serve Gymnasium-API environments to qfleet over the env protocol.

    import qfleet_env
    qfleet_env.serve(lambda: MyEnv())

serve() runs a vector of envs in this process and answers qfleet's
requests for it: one message per step for the whole vector, the
observations copied once into one contiguous buffer. It works with any
object that has Gymnasium's Env API (reset(seed=...) -> (obs, info),
step(a) -> (obs, reward, terminated, truncated, info), observation_space
.shape/.dtype, a discrete action_space .n, and optionally spec.id,
spec.max_episode_steps and spec.reward_threshold); Gymnasium itself is not
needed.

Two ways to run:
  * started by qfleet (the subprocess transport): qfleet sets
    QFLEET_ENV_FDS=3,4 and the protocol runs on those file descriptors, so
    the env may print and log freely on stdout and stderr; on linux/amd64
    it offers shared memory too (QFLEET_ENV_SHM), which this module takes;
  * as a server (the address transport): python3 my_env.py --listen
    HOST:PORT [--envs N] [--tls-cert C --tls-key K]; every connection gets
    a vector of its own.

The protocol is docs/env-protocol.md; the messages are messages/env.proto,
generated into env_pb2.py next to this file (`make proto`). Needs Python 3,
numpy and protobuf only (Debian: python3-numpy python3-protobuf).
"""

import argparse
import mmap
import os
import platform
import resource
import select
import socket
import ssl
import struct
import sys
import threading
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import env_pb2 as pb  # noqa: E402  (generated next to this file)

PROTOCOL_VERSION = 1
FDS_VAR = "QFLEET_ENV_FDS"
# Requests are small (a seed or an action per env); a larger length is a
# broken or hostile peer and is refused before anything is allocated.
MAX_REQUEST = 1 << 24

_HEADER = struct.Struct("<I")
_DTYPES = {"float32": pb.DTYPE_FLOAT32, "uint8": pb.DTYPE_UINT8, "binary": pb.DTYPE_BINARY}


class ProtocolError(Exception):
    """The peer broke the protocol: the session ends with a BAD_REQUEST error."""


def read_frame(f):
    """One frame's bytes from a binary reader; None at a clean end of stream."""
    hdr = f.read(4)
    if not hdr:
        return None
    if len(hdr) < 4:
        raise ProtocolError("the stream ended inside a frame header")
    (n,) = _HEADER.unpack(hdr)
    if n > MAX_REQUEST:
        raise ProtocolError(f"a frame of {n} bytes, over the limit of {MAX_REQUEST}")
    body = f.read(n)
    if len(body) < n:
        raise ProtocolError("the stream ended inside a frame")
    return body


def write_frame(f, msg):
    """Writes msg as one frame: its length (4 bytes, little-endian), then it.
    msg is a protobuf message or a list of its encoded parts."""
    parts = msg if isinstance(msg, list) else [msg.SerializeToString()]
    # One write: one system call, one copy of the observations.
    f.write(b"".join([_HEADER.pack(sum(map(len, parts)))] + parts))
    f.flush()


class _FileStream:
    """A session's byte streams as binary file objects (sockets)."""

    def __init__(self, rf, wf):
        self.rf, self.wf = rf, wf

    def read(self):
        return read_frame(self.rf)

    def write(self, msg):
        write_frame(self.wf, msg)


# Spinning for requests (see _FdStream): at most SPIN_MAX seconds, and only
# while the waits average below it.
SPIN_MIN, SPIN_MAX = 20e-6, 300e-6
# A poll that took SPIN_PREEMPTED, with the process preempted since the last
# such poll (another process wanted this CPU), means the CPUs are busy: then
# the next waits do not spin: SPIN_BACKOFF_MIN of them, or twice as many as
# the last time when it happens again within SPIN_BACKOFF_MAX waits that
# spun (at most SPIN_BACKOFF_MAX).
SPIN_PREEMPTED, SPIN_BACKOFF_MIN, SPIN_BACKOFF_MAX = 50e-6, 16, 1000


class _Spin:
    """When a wait for the next request spins, and for how long: at most
    SPIN_MAX, about twice the recent wait, and not while the CPUs are found
    busy (see SPIN_PREEMPTED)."""

    def __init__(self):
        self.avg = 0.0  # moving average of the waits
        self.backoff = 0  # waits left without spinning
        self.penalty = 0  # the last backoff's length
        self.spun = 0  # waits that spun since
        self.preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw

    def budget(self, start):
        """Until when a wait that starts at start spins; None: it sleeps."""
        if self.backoff:
            self.backoff -= 1
            return None
        if self.avg >= SPIN_MAX:
            return None
        self.spun += 1
        return start + min(2 * self.avg + SPIN_MIN, SPIN_MAX)

    def slow_poll(self):
        """A poll took SPIN_PREEMPTED: slow, not necessarily preempted (a
        virtual CPU may stall): the count of preemptions tells."""
        preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        if preempted != self.preempted:
            self.preempted = preempted
            if self.spun < SPIN_BACKOFF_MAX:
                self.penalty = min(max(2 * self.penalty, SPIN_BACKOFF_MIN), SPIN_BACKOFF_MAX)
            else:
                self.penalty = SPIN_BACKOFF_MIN
            self.backoff, self.spun = self.penalty, 0

    def record(self, wait):
        self.avg += (wait - self.avg) / 8

    def until(self, start, poll):
        """Calls poll() until it returns other than None (returned), the
        budget from start ends or the CPUs are found busy (None)."""
        until = self.budget(start)
        if until is None:
            return None
        now, last = time.perf_counter, start
        while True:
            got = poll()
            if got is not None:
                return got
            t = now()
            if t - last > SPIN_PREEMPTED:
                self.slow_poll()
                return None
            if t > until:
                return None
            last = t


class _FdStream:
    """A session on two file descriptors (the subprocess transport): frames
    are read into one preallocated buffer and written with one system call,
    without Python's file objects.

    While requests come fast (the client answers within tens of
    microseconds, as when it steps a fast env in a small vector) the wait
    for the next one is mostly the wake-up of a sleeping process, which on
    virtual machines costs tens of microseconds, as much as the envs' own
    work. So the reader first polls the pipe (non-blocking reads) for about
    twice the recent wait, then sleeps in select as before; when the CPUs
    are busy (a poll was descheduled) it does not spin for a while."""

    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd
        os.set_blocking(rfd, False)
        self.buf = bytearray(1 << 16)
        self.mv = memoryview(self.buf)
        self.pos = self.end = 0
        self.spin = _Spin()

    def _fill(self, need):
        """Reads until need bytes from pos are buffered; False at EOF."""
        if self.pos + need > len(self.buf):
            # Move what is left of the buffer to its start, grown if need be.
            rest = self.end - self.pos
            if need > len(self.buf):
                buf = bytearray(max(need, 2 * len(self.buf)))
                buf[:rest] = self.mv[self.pos:self.end]
                self.buf, self.mv = buf, memoryview(buf)
            else:
                self.buf[:rest] = self.mv[self.pos:self.end]
            self.pos, self.end = 0, rest
        while self.end - self.pos < need:
            try:
                k = os.readv(self.rfd, [self.mv[self.end:]])
            except BlockingIOError:
                k = self._wait()
            if k == 0:
                return False
            self.end += k
        return True

    def _wait(self):
        """Waits for data and reads it: spinning first, then in select."""
        rfd, target, start = self.rfd, self.mv[self.end:], time.perf_counter()

        def poll():
            try:
                return os.readv(rfd, [target])
            except BlockingIOError:
                return None

        k = self.spin.until(start, poll)
        if k is not None:
            self.spin.record(time.perf_counter() - start)
            return k
        while True:
            select.select([rfd], [], [])
            try:
                k = os.readv(rfd, [target])
                break
            except BlockingIOError:
                continue
        self.spin.record(time.perf_counter() - start)
        return k

    def read(self):
        """The next frame (a memoryview, valid until the next read), or
        None at a clean end of stream."""
        if not self._fill(4):
            if self.end > self.pos:
                raise ProtocolError("the stream ended inside a frame header")
            return None
        (n,) = _HEADER.unpack_from(self.buf, self.pos)
        if n > MAX_REQUEST:
            raise ProtocolError(f"a frame of {n} bytes, over the limit of {MAX_REQUEST}")
        if not self._fill(4 + n):
            raise ProtocolError("the stream ended inside a frame")
        start = self.pos + 4
        self.pos = start + n
        if self.pos == self.end:
            self.pos = self.end = 0  # the next frame starts at the buffer's start
        return self.mv[start:start + n]

    def write(self, msg):
        parts = msg if isinstance(msg, list) else [msg.SerializeToString()]
        data = b"".join([_HEADER.pack(sum(map(len, parts)))] + parts)
        while data:
            k = os.write(self.wfd, data)
            data = data[k:]

# Shared memory (the subprocess transport, when qfleet offers it in
# SHM_VAR): the header's uint64 slots, in the order docs/env-protocol.md
# gives them, each on a cache line of its own.
SHM_VAR = "QFLEET_ENV_SHM"
(_REQ_SEQ, _REP_SEQ, _SRV_SLEEP, _CLI_SLEEP, _REQ_LEN, _REP_LEN, _REP_CAP, _REQ_CAP) = range(0, 64, 8)
_SHM_HEADER, _SHM_RECHECK = 4096, 0.1


def _shm_offered():
    """The memory file qfleet offers (its file descriptor), or None."""
    fd = os.environ.get(SHM_VAR)
    if not fd or platform.machine().lower() not in ("x86_64", "amd64"):
        return None  # the scheme needs x86-64's ordering of stores
    return int(fd)


class _ShmStream:
    """A session's frames in shared memory after the handshake: qfleet
    writes a request and bumps the request sequence; this side spins on it
    (then sleeps in select on the request pipe, where qfleet rings when it
    sees the sleeping flag), writes the reply and bumps the reply sequence
    to the request's. Stores reach the other process in program order on
    x86-64; a lock's acquire is the full barrier between setting a flag
    and reading the other side's sequence, and sleeps look again every
    100 ms whatever happens."""

    def __init__(self, fds, fd):
        self.rfd, self.wfd, self.fd = fds.rfd, fds.wfd, fd
        self.seq = 0
        self.spin, self.fence = _Spin(), threading.Lock()
        self._map()

    def _map(self):
        """Maps the file as large as its header says (again when qfleet
        has grown the reply area; the old mapping goes with its views)."""
        with mmap.mmap(self.fd, _SHM_HEADER) as head:
            q = memoryview(head).cast("Q")
            rep_cap, req_cap = q[_REP_CAP], q[_REQ_CAP]
            q.release()
        self.req_cap, self.rep_cap = req_cap, rep_cap
        self.mem = mmap.mmap(self.fd, _SHM_HEADER + req_cap + rep_cap)
        self.mv = memoryview(self.mem)
        self.q = self.mv[:_SHM_HEADER].cast("Q")

    def read(self):
        q = self.q
        if q[_REQ_SEQ] == self.seq and not self._wait():
            return None
        self.seq = q[_REQ_SEQ]
        if q[_REP_CAP] != self.rep_cap:
            self._map()
            q = self.q
        n = q[_REQ_LEN]
        if n < 4 or n > self.req_cap:
            raise ProtocolError(f"a request of {n} bytes in shared memory of {self.req_cap}")
        (k,) = _HEADER.unpack_from(self.mem, _SHM_HEADER)
        if k + 4 != n:
            raise ProtocolError(f"a request frame of {k} bytes in {n - 4}")
        return self.mv[_SHM_HEADER + 4:_SHM_HEADER + n]

    def _wait(self):
        """Waits for the next request; False when qfleet has gone."""
        q, seq, start = self.q, self.seq, time.perf_counter()
        self.spin.until(start, lambda: True if q[_REQ_SEQ] != seq else None)
        ok = q[_REQ_SEQ] != seq or self._sleep()
        self.spin.record(time.perf_counter() - start)
        return ok

    def _sleep(self):
        q, seq = self.q, self.seq
        q[_SRV_SLEEP] = 1
        with self.fence:
            pass
        try:
            while q[_REQ_SEQ] == seq:
                if select.select([self.rfd], [], [], _SHM_RECHECK)[0]:
                    try:
                        if not os.read(self.rfd, 4096):
                            return False  # qfleet closed the pipe
                    except BlockingIOError:
                        pass
        finally:
            q[_SRV_SLEEP] = 0
        return True

    def write(self, msg):
        parts = msg if isinstance(msg, list) else [msg.SerializeToString()]
        size = sum(map(len, parts))
        if 4 + size > self.rep_cap:
            raise ProtocolError(f"a reply of {4 + size} bytes, the shared memory holds {self.rep_cap}")
        off = _SHM_HEADER + self.req_cap
        _HEADER.pack_into(self.mem, off, size)
        mv, off = self.mv, off + 4
        for p in parts:
            mv[off:off + len(p)] = p
            off += len(p)
        q = self.q
        q[_REP_LEN] = 4 + size
        q[_REP_SEQ] = self.seq  # after the frame: qfleet reads it once it sees this
        with self.fence:
            pass
        if q[_CLI_SLEEP]:
            os.write(self.wfd, b"\x01")


def _step_header(n):
    """The bytes that open a Step request of n actions as Go's protobuf
    encodes it (Request field 3 holding Step field 1, packed) when every
    action is below 128: then each action is one byte after them."""
    inner = b"\x0a" + _varint(n)
    return b"\x1a" + _varint(len(inner) + n) + inner


def _step_actions(data, header, n):
    """The actions of a Step request of n envs as bytes (one a value) when
    it is encoded as _step_header says; None for anything else, left to
    the protobuf module."""
    h = len(header)
    if len(data) == h + n and data[:h] == header:
        actions = bytes(data[h:])
        if max(actions) < 0x80:
            return actions
    return None


_SMALL = [bytes((i,)) for i in range(0x80)]


def _varint(n):
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_step(observations, rewards, terminated, truncated, final):
    """A Reply{step_result} as protobuf encodes it, as a list of byte
    strings to write one after the other. Encoded here rather than through
    the protobuf module because it is the hot path: the observations are
    written as they are, never copied into a message. The arguments are
    the packed fields (empty ones are left out, as proto3 does):
    float32/uint8 observations, little-endian float64 rewards, one 0/1 byte
    per flag (protobuf's packed bools). The tags are field number << 3 | 2
    (length-delimited), in env.proto's numbering."""
    n_obs, n_rew, n_flags, n_fin = len(observations), len(rewards), len(terminated), len(final)
    parts = [b"\x0a", _varint(n_obs), observations, b"\x12", _varint(n_rew), rewards,
             b"\x1a", _varint(n_flags), terminated, b"\x22", _varint(n_flags), truncated]
    if n_fin:
        parts += (b"\x2a", _varint(n_fin), final)
    size = sum(map(len, parts))
    return [b"\x1a", _varint(size)] + parts  # Reply field 3, step_result


def _error(code, message):
    return pb.Reply(error=pb.Error(code=code, message=message))


def _wire_dtype(space_dtype, override):
    if override is not None:
        if override not in _DTYPES:
            raise ValueError(f"obs_dtype {override!r}: want one of {sorted(_DTYPES)}")
        return _DTYPES[override]
    dt = np.dtype(space_dtype)
    if dt == np.bool_:
        return pb.DTYPE_BINARY
    if dt == np.uint8:
        return pb.DTYPE_UINT8
    if dt.kind in "fiu":
        return pb.DTYPE_FLOAT32  # rounded to float32 on the wire
    raise ValueError(f"observation dtype {dt}: want a float, integer, uint8 or bool space")


class _Vector:
    """n envs of one spec, their observations in one buffer."""

    def __init__(self, make_env, n, obs_dtype=None, env_id=None):
        self.envs = [make_env() for _ in range(n)]
        env = self.envs[0]
        space, actions = env.observation_space, env.action_space
        if not hasattr(actions, "n"):
            raise ValueError(f"action space {actions!r}: only discrete action spaces (with .n) are served")
        self.num_actions = int(actions.n)
        self.action_start = int(getattr(actions, "start", 0))
        self.shape = tuple(int(d) for d in space.shape)
        self.dtype = _wire_dtype(space.dtype, obs_dtype)
        np_dtype = np.dtype("<f4") if self.dtype == pb.DTYPE_FLOAT32 else np.dtype(np.uint8)
        self.obs = np.zeros((n,) + self.shape, dtype=np_dtype)
        self.final = np.zeros_like(self.obs)
        spec = getattr(env, "spec", None)
        self.spec = pb.Spec(
            id=env_id or getattr(spec, "id", None) or type(getattr(env, "unwrapped", env)).__name__,
            obs_shape=self.shape,
            obs_dtype=self.dtype,
            num_actions=self.num_actions,
            max_episode_steps=int(getattr(spec, "max_episode_steps", None) or 0),
        )
        threshold = getattr(spec, "reward_threshold", None)
        if threshold is not None:
            self.spec.reward_threshold = float(threshold)
        self.ready = False
        # Per-step scratch, allocated once.
        self.step_header = _step_header(n)
        self._steps = [env.step for env in self.envs]
        self._rewards = struct.Struct(f"<{n}d")
        self._rows = [None] * n
        self._no_flags = bytes(n)
        self._obs_bytes = self.obs.reshape(-1).view(np.uint8).data
        self._final_bytes = self.final.reshape(-1).view(np.uint8).data
        self._row_bytes = self.obs[0].nbytes

    def _row(self, obs):
        """obs as an array of the observation's shape, else a ValueError."""
        a = np.asarray(obs)
        if a.shape != self.shape:
            raise ValueError(f"the env returned an observation of shape {a.shape}, its space says {self.shape}")
        return a

    def reset(self, seeds):
        if len(seeds) != len(self.envs):
            raise ProtocolError(f"reset: {len(seeds)} seeds for {len(self.envs)} envs")
        for i, (env, seed) in enumerate(zip(self.envs, seeds)):
            # Seeds are int64 on the wire; numpy wants them >= 0, so a
            # negative one is read as its two's complement, as qfleet's Go
            # envs read it.
            obs, _ = env.reset(seed=seed % (1 << 64))
            self.obs[i] = self._row(obs)
        self.ready = True
        return pb.Reply(reset_result=pb.ResetResult(observations=self.obs.tobytes()))

    def step(self, actions):
        """Steps every env; returns the reply's encoded parts (encode_step).
        actions is a sequence of ints (bytes when they were sent one byte
        each)."""
        n = len(self.envs)
        if not self.ready:
            raise ProtocolError("step before reset")
        if len(actions) != n:
            raise ProtocolError(f"step: {len(actions)} actions for {n} envs")
        if min(actions) < 0 or max(actions) >= self.num_actions:
            bad = next(i for i, a in enumerate(actions) if not 0 <= a < self.num_actions)
            raise ProtocolError(f"step: action {actions[bad]} for env {bad}, want 0..{self.num_actions - 1}")
        start = self.action_start
        if start:
            actions = [a + start for a in actions]
        # The hot loop: per env only the env's own step and a reference to
        # its observation; the copy into the buffer is one call at the end.
        rewards, rows, shape, ndarray = [0.0] * n, self._rows, self.shape, np.ndarray
        wire, same = self.obs.dtype, True  # same: every row is of the wire's dtype
        terminated = truncated = None
        k = 0
        for i, (step, a) in enumerate(zip(self._steps, actions)):
            obs, r, term, trunc, _ = step(a)
            rewards[i] = r
            if term or trunc:
                if terminated is None:
                    terminated, truncated = bytearray(n), bytearray(n)
                terminated[i], truncated[i] = bool(term), bool(trunc)
                # Same-step autoreset: keep the last observation (copied
                # now: an env may reuse its array), start the next episode
                # on the env's own random stream (no seed).
                self.final[k] = self._row(obs)
                k += 1
                obs, _ = self.envs[i].reset()
            if obs.__class__ is not ndarray or obs.shape != shape:
                obs = self._row(obs)
            if obs.dtype is not wire:
                same = False
            rows[i] = obs
        observations = self._join(rows) if same else None
        if observations is None:
            self._gather(rows, self.obs)
            observations = self._obs_bytes
        if terminated is None:
            terminated = truncated = self._no_flags
        # The buffers go out as they are (the write copies them once).
        return encode_step(observations, self._rewards.pack(*rewards), terminated, truncated,
                           self._final_bytes[:k * self._row_bytes])

    @staticmethod
    def _join(rows):
        """The rows' bytes one after the other, when each row is a
        C-contiguous array of the wire's dtype (the common case: one C call
        reading each row's buffer, cheaper than numpy's concatenate for small
        rows); None when a row is not contiguous."""
        try:
            return b"".join(rows)
        except (BufferError, TypeError):
            return None

    def _gather(self, rows, out):
        """Copies rows (arrays of the observation's shape) into out."""
        if self.shape:
            np.concatenate(rows, out=out.reshape((-1,) + self.shape[1:]), casting="unsafe")
        else:
            out[:] = rows

    def close(self):
        for env in self.envs:
            try:
                env.close()
            except Exception:  # noqa: BLE001  (closing is best effort)
                pass


def _session(stream, make_env, default_envs, obs_dtype, env_id):
    """Serves one client until it closes; returns the exit code: 0 when the
    client closed, 1 when the env raised, 2 when the client broke the
    protocol. Failures are sent as an Error reply before returning.
    stream is a _FileStream or an _FdStream (an _ShmStream after the
    handshake when qfleet offered shared memory)."""
    vec = None
    try:
        data = stream.read()
        if data is None:
            return 0
        req = pb.Request.FromString(bytes(data))
        if req.WhichOneof("kind") != "hello":
            raise ProtocolError(f"the first request is {req.WhichOneof('kind')}, want hello")
        if req.hello.protocol_version != PROTOCOL_VERSION:
            stream.write(_error(pb.Error.CODE_VERSION,
                                   f"the client speaks protocol version {req.hello.protocol_version}, "
                                   f"this server {PROTOCOL_VERSION}"))
            return 2
        vec = _Vector(make_env, req.hello.num_envs or default_envs, obs_dtype, env_id)
        shm, fd = None, _shm_offered() if isinstance(stream, _FdStream) else None
        if fd is not None:
            try:
                shm = _ShmStream(stream, fd)
            except (OSError, ValueError) as e:
                print(f"qfleet_env: shared memory refused, the pipes carry the session: {e}", file=sys.stderr)
        stream.write(pb.Reply(handshake=pb.Handshake(
            protocol_version=PROTOCOL_VERSION, spec=vec.spec, num_envs=len(vec.envs), shared_memory=shm is not None)))
        if shm is not None:
            stream = shm
        header, n = vec.step_header, len(vec.envs)
        while True:
            data = stream.read()
            if data is None:
                return 0
            # The hot path: a step request decoded without the protobuf module.
            actions = _step_actions(data, header, n)
            if actions is not None:
                stream.write(vec.step(actions))
                continue
            req = pb.Request.FromString(bytes(data))
            kind = req.WhichOneof("kind")
            if kind == "step":
                stream.write(vec.step(req.step.actions))
            elif kind == "reset_envs":
                stream.write(vec.reset(req.reset_envs.seeds))
            elif kind == "close":
                return 0
            else:
                raise ProtocolError(f"a {kind} request in a session")
    except ProtocolError as e:
        print(f"qfleet_env: {e}", file=sys.stderr)
        _try_send(stream, _error(pb.Error.CODE_BAD_REQUEST, str(e)))
        return 2
    except (BrokenPipeError, ConnectionError):
        return 0  # the client is gone: nobody to answer
    except Exception:  # noqa: BLE001  (any env failure goes to the client)
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, end="")
        _try_send(stream, _error(pb.Error.CODE_ENV, tb))
        return 1
    finally:
        if vec is not None:
            vec.close()


def _try_send(stream, msg):
    try:
        stream.write(msg)
    except OSError:
        pass


def _listen(addr, make_env, default_envs, obs_dtype, env_id, tls):
    host, _, port = addr.rpartition(":")
    srv = socket.create_server((host.strip("[]"), int(port)))
    print(f"qfleet_env: serving on {srv.getsockname()[0]}:{srv.getsockname()[1]}", file=sys.stderr, flush=True)

    def handle(sock, peer):
        try:
            # Requests and replies are small and strictly alternate.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_side=True)
            with sock.makefile("rb") as rf, sock.makefile("wb") as wf:
                _session(_FileStream(rf, wf), make_env, default_envs, obs_dtype, env_id)
        except OSError as e:  # ssl.SSLError included: a client that failed TLS
            print(f"qfleet_env: client {peer}: {e}", file=sys.stderr)
        finally:
            sock.close()

    while True:
        sock, peer = srv.accept()
        # One thread a client: a stuck or slow client holds up no other.
        threading.Thread(target=handle, args=(sock, peer), daemon=True).start()


def serve(make_env, *, envs=1, obs_dtype=None, env_id=None, argv=None):
    """Serves vectors of make_env() envs, as the command line and the
    environment say (see the module's doc); does not return.

    envs is the vector's length when the client leaves it to the server;
    obs_dtype ("float32", "uint8" or "binary") overrides the dtype read
    from the observation space; env_id the id read from env.spec.
    """
    p = argparse.ArgumentParser(description="Serve an environment to qfleet over the env protocol.")
    p.add_argument("--listen", metavar="HOST:PORT", help="serve over TCP (the address transport)")
    p.add_argument("--envs", type=int, default=envs, help="envs per connection when the client leaves it open")
    p.add_argument("--tls-cert", help="TLS certificate (PEM) for --listen")
    p.add_argument("--tls-key", help="TLS private key (PEM) for --listen")
    args = p.parse_args(argv)
    fds = os.environ.get(FDS_VAR)
    if fds:
        rfd, wfd = (int(x) for x in fds.split(","))
        # The env's prints reach qfleet's log line by line, even when it dies.
        sys.stdout.reconfigure(line_buffering=True)
        code = _session(_FdStream(rfd, wfd), make_env, args.envs, obs_dtype, env_id)
        os.close(rfd)
        os.close(wfd)
        sys.exit(code)
    if args.listen:
        tls = None
        if args.tls_cert:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        try:
            _listen(args.listen, make_env, args.envs, obs_dtype, env_id, tls)
        except KeyboardInterrupt:
            sys.exit(0)
    p.error(f"run me from qfleet (it sets {FDS_VAR}) or with --listen HOST:PORT")
