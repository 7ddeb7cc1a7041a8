package launch

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
)

// goarchOf is the GOARCH of a host whose uname -m is m ("" when unknown).
func goarchOf(m string) string {
	switch m {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64", "aarch64_be":
		return "arm64"
	case "i386", "i486", "i586", "i686":
		return "386"
	case "armv5l", "armv6l", "armv7l", "armv8l", "arm":
		return "arm"
	case "riscv64":
		return "riscv64"
	case "ppc64le":
		return "ppc64le"
	case "ppc64":
		return "ppc64"
	case "s390x":
		return "s390x"
	case "loongarch64":
		return "loong64"
	case "mips", "mipsle", "mips64", "mips64le":
		return m
	}
	return ""
}

// elfArch is the GOARCH a Linux executable was built for.
func elfArch(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("binary %s: not a Linux executable (%v)", path, err)
	}
	defer f.Close()
	le := f.ByteOrder.String() == "LittleEndian"
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_ARM:
		return "arm", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	case elf.EM_PPC64:
		if le {
			return "ppc64le", nil
		}
		return "ppc64", nil
	case elf.EM_S390:
		return "s390x", nil
	case elf.EM_LOONGARCH:
		return "loong64", nil
	case elf.EM_MIPS:
		arch := "mips"
		if f.Class == elf.ELFCLASS64 {
			arch = "mips64"
		}
		if le {
			arch += "le"
		}
		return arch, nil
	}
	return "", fmt.Errorf("binary %s: an executable for %v, which qfleet does not know", path, f.Machine)
}

// binaries finds the local qfleet binary for each host and hashes each
// binary once (hosts are checked at the same time).
type binaries struct {
	running string // the binary running now (os.Executable), the default
	mu      sync.Mutex
	arch    map[string]string // path → GOARCH
	sums    map[string]string // path → sha256 hex
}

func newBinaries(running string) *binaries {
	return &binaries{running: running, arch: map[string]string{}, sums: map[string]string{}}
}

// pick returns the binary for h, a host whose uname -m is machine: the
// host's own binary, else binaries[GOARCH], else the top-level binary or
// the running one; and checks that it was built for the host.
func (b *binaries) pick(h *Host, machine string) (string, error) {
	goarch := goarchOf(machine)
	if goarch == "" {
		return "", fmt.Errorf("its architecture %q (uname -m) is not one Go builds for", machine)
	}
	path := h.Binary
	if path == "" {
		path = h.Binaries[goarch]
	}
	if path == "" {
		path = b.running
	}
	if path == "" {
		return "", fmt.Errorf("no qfleet binary for %s (%s): give binaries: {%s: PATH}", machine, goarch, goarch)
	}
	arch, err := b.archOf(path)
	if err != nil {
		return "", err
	}
	if arch != goarch {
		return "", fmt.Errorf("the host is %s (%s) but the binary %s is for %s: build one (GOOS=linux GOARCH=%s go build ./cmd/qfleet) and give binaries: {%s: PATH}",
			machine, goarch, path, arch, goarch, goarch)
	}
	return path, nil
}

func (b *binaries) archOf(path string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.arch[path]; ok {
		return a, nil
	}
	a, err := elfArch(path)
	if err != nil {
		return "", err
	}
	b.arch[path] = a
	return a, nil
}

// sum is the sha256 of the binary at path, to skip copying one the host
// has already.
func (b *binaries) sum(path string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.sums[path]; ok {
		return s, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		return "", fmt.Errorf("binary %s: %v", path, err)
	}
	s := hex.EncodeToString(hash.Sum(nil))
	b.sums[path] = s
	return s, nil
}
