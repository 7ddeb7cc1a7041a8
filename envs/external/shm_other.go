//go:build !(linux && amd64)

package external

import "os"

// offerShm keeps the subprocess transport on its pipes: shared memory is
// offered on linux/amd64 only (see shm_linux.go).
func offerShm(p *pipeConn) (conn, *os.File) { return p, nil }

// shmOffered says whether Start offers shared memory on this platform.
const shmOffered = false
