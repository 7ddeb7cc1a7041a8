package launch

import (
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
)

// TestNodeConfig: the node.yaml of a runner host is one config file that
// 'qfleet node --config' reads strictly: the host's settings, its place in
// the cluster (joining the learner's host), the credentials' paths, and a
// node without a terminal (live never, progress lines for its log).
func TestNodeConfig(t *testing.T) {
	s, err := parseIn(t, specDir(t), goodSpec)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Host("C")
	data, err := nodeConfig(c, s.Seed(), pathsIn("/srv/qfleet"))
	if err != nil {
		t.Fatal(err)
	}
	cf := qfleet.DefaultConfig("CartPole-v1")
	if err := qfleet.ParseConfig(data, "node.yaml", &cf); err != nil {
		t.Fatalf("the node's config does not parse: %v\n%s", err, data)
	}
	checks := map[string][2]string{
		"name":        {cf.Name, "C"},
		"roles":       {cf.Roles, "runner,evaluator"},
		"gossip_addr": {cf.GossipAddr, "0.0.0.0:8000"},
		"remote_addr": {cf.RemoteAddr, "0.0.0.0:8001"},
		"advertise":   {cf.Advertise, "198.51.100.7"},
		"join":        {cf.Join, "10.9.0.10:7946"},
		"http":        {cf.HTTP, ""},
		"tls_cert":    {cf.TLSCert, "/srv/qfleet/node.crt"},
		"tls_key":     {cf.TLSKey, "/srv/qfleet/node.key"},
		"tls_ca":      {cf.TLSCA, "/srv/qfleet/ca.crt"},
		"cluster_key": {cf.ClusterKeyFile, "/srv/qfleet/cluster.key"},
		"profile":     {cf.Profile, "lan"},
		"live":        {cf.Live, "never"},
		"progress":    {cf.Progress, "10s"},
	}
	for key, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", key, v[0], v[1])
		}
	}
	if cf.TargetReturn == nil || *cf.TargetReturn != 150 || cf.LearningRate != 0.001 {
		t.Errorf("target_return %v learning_rate %v: want the config file's 150 and 0.001", cf.TargetReturn, cf.LearningRate)
	}
	if !strings.HasPrefix(string(data), "# The config of node C") {
		t.Errorf("no header comment:\n%s", data)
	}
	// The seed joins no one; the learner serves its dashboard on loopback.
	a := s.Host("A")
	data, err = nodeConfig(a, nil, pathsIn("/home/q/qfleet-lab"))
	if err != nil {
		t.Fatal(err)
	}
	cf = qfleet.DefaultConfig("CartPole-v1")
	if err := qfleet.ParseConfig(data, "node.yaml", &cf); err != nil {
		t.Fatal(err)
	}
	if cf.Join != "" || cf.HTTP != "127.0.0.1:9090" || *cf.TargetReturn != 100 {
		t.Errorf("A: join %q http %q target %v", cf.Join, cf.HTTP, *cf.TargetReturn)
	}
}
