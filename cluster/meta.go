package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// metaVersion is the node metadata format. Fields are only ever added (JSON
// ignores unknown ones), so nodes of different versions understand each
// other; bump it only for an incompatible change.
const metaVersion = 1

// nodeMeta is what a node advertises in memberlist metadata. memberlist
// gossips it in every alive message and panics above memberlist.MetaMaxSize
// (512 bytes), so it holds only what the Directory and the ε ladder need;
// short JSON keys keep it around 100 bytes.
type nodeMeta struct {
	Version int      `json:"v"`
	Roles   []string `json:"r,omitempty"`
	Remote  string   `json:"a"`
	Epoch   uint64   `json:"e"`
	// Runners is the node's env runner count (Config.Runners), for the
	// cluster-wide ε ladder. Added in version 1 (absent: 0, no place in the
	// ladder).
	Runners int `json:"n,omitempty"`
	// Leaving is set just before a graceful Leave. memberlist's leave
	// notification does not say whether a node left or died (see
	// membership.go), so peers read this flag instead.
	Leaving bool `json:"l,omitempty"`
}

func (m nodeMeta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes, memberlist allows %d (roles %v, remote address %d bytes)",
			ErrMetaTooLarge, len(b), memberlist.MetaMaxSize, m.Roles, len(m.Remote))
	}
	return b, nil
}

func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 {
		return m, fmt.Errorf("no metadata (not a qfleet node?)")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("unreadable metadata: %v", err)
	}
	if m.Version < 1 {
		return m, fmt.Errorf("metadata version %d", m.Version)
	}
	return m, nil
}
