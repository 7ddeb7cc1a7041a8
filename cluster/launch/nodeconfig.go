package launch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster"
)

// nodeConfig is the config file of h's node ('qfleet node --config'): the
// host's settings, then the keys the launch sets (its name, roles,
// addresses, the seed to join, the credentials' paths in p). seed is nil
// when the node joins no one (it is the seed). The settings are checked as
// 'qfleet node --config' would check them, so that a typo stops the launch
// before anything starts; errors name the key.
func nodeConfig(h *Host, seed *Host, p Paths) ([]byte, error) {
	known, err := configKeys()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(h.Settings))
	for k := range h.Settings {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("settings: %s: unknown config key (see 'qfleet config print')", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	settings := map[string]any{}
	for _, k := range keys {
		settings[k] = h.Settings[k]
	}
	// A launched node has no terminal; its progress lines are what
	// 'qfleet logs' shows.
	if _, ok := settings["live"]; !ok {
		settings["live"] = "never"
	}
	if _, ok := settings["progress"]; !ok {
		settings["progress"] = "10s"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The config of node %s, written by 'qfleet launch': edits here are lost at the next launch.\n", h.Name)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(settings); err != nil {
		return nil, fmt.Errorf("settings: %v", err)
	}
	own := []struct {
		key string
		val any
	}{
		{"name", h.Name},
		{"roles", strings.Join(h.Roles, ",")},
		{"gossip_addr", net.JoinHostPort(h.Bind, strconv.Itoa(h.Gossip))},
		{"remote_addr", net.JoinHostPort(h.Bind, strconv.Itoa(h.Remote))},
		{"advertise", h.Advertise},
		{"join", ""},
		{"http", h.HTTP},
		{"cluster_key_file", p.Key},
		{"tls_cert", p.Cert},
		{"tls_key", p.CertKey},
		{"tls_ca", p.CA},
	}
	if seed != nil && seed != h {
		own[5].val = net.JoinHostPort(seed.PeerIP(), strconv.Itoa(seed.Gossip))
	}
	var ownDoc yaml.Node
	ownDoc.Kind = yaml.MappingNode
	for _, kv := range own {
		var k, v yaml.Node
		if err := k.Encode(kv.key); err != nil {
			return nil, err
		}
		if err := v.Encode(kv.val); err != nil {
			return nil, err
		}
		ownDoc.Content = append(ownDoc.Content, &k, &v)
	}
	if err := enc.Encode(&ownDoc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	// Two documents were written; the node reads one: join them.
	data := bytes.Replace(b.Bytes(), []byte("\n---\n"), []byte("\n"), 1)
	if err := checkSettings(data); err != nil {
		return nil, err
	}
	return data, nil
}

// checkSettings decodes a node's config as the node will, over the
// defaults of its env and profile, and checks the hyper-parameters' rules.
func checkSettings(data []byte) error {
	var head struct {
		Env     string `yaml:"env"`
		Profile string `yaml:"profile"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("settings: %s", strings.ReplaceAll(err.Error(), "\n", `\n`))
	}
	if head.Env == "" {
		head.Env = qfleet.DefaultEnv
	}
	if head.Profile == "" {
		head.Profile = cluster.ProfileWAN
	}
	if _, _, ok := cluster.WeightsBudget(head.Profile); !ok {
		return fmt.Errorf("settings: profile = %q: want %s, %s or %s", head.Profile, cluster.ProfileLocal, cluster.ProfileLAN, cluster.ProfileWAN)
	}
	cf := qfleet.DefaultConfigForProfile(head.Env, head.Profile)
	if err := qfleet.ParseConfig(data, "", &cf); err != nil {
		// Its line numbers are the generated file's, no help to anyone.
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "config "), ": ")
		return fmt.Errorf("settings: %s", lineNumber.ReplaceAllString(msg, ""))
	}
	if err := cf.Config.Validate(); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return nil
}

var lineNumber = regexp.MustCompile(`line [0-9]+: `)

// configKeys are the keys of a qfleet config file.
var configKeys = sync.OnceValues(func() ([]string, error) {
	var n yaml.Node
	if err := n.Encode(qfleet.Config{}); err != nil || n.Kind != yaml.MappingNode {
		return nil, errors.Join(errors.New("listing the config keys"), err)
	}
	var keys []string
	for i := 0; i < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys, nil
})
