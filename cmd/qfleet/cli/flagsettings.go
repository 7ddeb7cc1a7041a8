package cli

import (
	"flag"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// flagSettings are the settings that only a command-line flag had before: the
// run's outputs and, for 'qfleet node', its place in the cluster. Each YAML
// key is its flag's name with _ for -, so one config file can say everything
// a command line can. They are applied to the command's own flags before the
// command line is read back, so a flag given there wins; a key the command
// has no flag for (e.g. join in 'qfleet dev') is ignored.
type flagSettings struct {
	RunDir              string `yaml:"run_dir"`
	CheckpointEvery     string `yaml:"checkpoint_every"`
	ReplaySnapshotEvery string `yaml:"replay_snapshot_every"`
	MaxMemory           string `yaml:"max_memory"`

	Name           string `yaml:"name"`
	Roles          string `yaml:"roles"`
	Join           string `yaml:"join"`
	GossipAddr     string `yaml:"gossip_addr"`
	RemoteAddr     string `yaml:"remote_addr"`
	Advertise      string `yaml:"advertise"`
	Profile        string `yaml:"profile"`
	ClusterKeyFile string `yaml:"cluster_key_file"`
	TLSCert        string `yaml:"tls_cert"`
	TLSKey         string `yaml:"tls_key"`
	TLSCA          string `yaml:"tls_ca"`
	Insecure       bool   `yaml:"insecure"`
	TrialsDir      string `yaml:"trials_dir"`
	TrialSlots     int    `yaml:"trial_slots"`
}

// nodeSettingKeys are the keys of flagSettings that only 'qfleet node' reads
// (its flags beyond the training flags).
var nodeSettingKeys = sync.OnceValue(func() map[string]bool {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	addNodeFlags(fs)
	keys := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { keys[strings.ReplaceAll(f.Name, "-", "_")] = true })
	return keys
})

// flagSettingComments are the comments 'qfleet config print' writes.
var flagSettingComments = map[string]fieldComment{
	"run_dir":               {group: "Command settings (flags of the same name override them; the cluster ones are read by 'qfleet node' only)", text: "run directory (empty: a new runs/<env>-<seed>-<UTC time>)"},
	"checkpoint_every":      {text: "interval of periodic learner checkpoints; a value other than the default turns checkpoints on"},
	"replay_snapshot_every": {text: "interval of replay snapshots (0s: none)"},
	"max_memory":            {text: "memory the node may plan to use (16GiB, 500MB; auto: 80% of the machine's or cgroup's; 0: no limit); the estimate is at the end of this file"},
	"name":                  {text: "node name, unique in the cluster (empty: the host name)"},
	"roles":                 {text: "comma-separated roles of the node: replay, learner, broadcaster, runner, trials"},
	"join":                  {text: "comma-separated seed gossip addresses (host:port); empty for the first node"},
	"gossip_addr":           {text: "memberlist gossip bind address (TCP and UDP)"},
	"remote_addr":           {text: "protoactor remote bind address (TCP)"},
	"advertise":             {text: "host[:port] other nodes reach this node at (empty: the bind host)"},
	"profile":               {text: "failure detection profile: local, lan, wan"},
	"cluster_key_file":      {text: "file with the shared gossip key"},
	"tls_cert":              {text: "this node's TLS certificate file (PEM)"},
	"tls_key":               {text: "this node's TLS private key file (PEM)"},
	"tls_ca":                {text: "CA certificate file: peers must present certificates it signed"},
	"insecure":              {text: "allow non-loopback addresses without a cluster key and TLS"},
	"trials_dir":            {text: "with the trials role: directory of the sweep trials' run directories"},
	"trial_slots":           {text: "with the trials role: sweep trials the node runs at a time"},
}

// flagName is the flag a flagSettings field stands for.
func flagName(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return strings.ReplaceAll(key, "_", "-")
}

// apply sets the flags of fs that s gives a value for, unless the command
// line gave that flag. Zero values and the flag's own default are skipped,
// so that a printed config (which lists every default) changes nothing.
func (s flagSettings) apply(fs *flag.FlagSet, path string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		field := v.Type().Field(i)
		fl := fs.Lookup(flagName(field))
		if fl == nil || given[fl.Name] || v.Field(i).IsZero() {
			continue
		}
		val := fmt.Sprint(v.Field(i).Interface())
		if val == fl.DefValue {
			continue
		}
		if err := fs.Set(fl.Name, val); err != nil {
			key, _, _ := strings.Cut(field.Tag.Get("yaml"), ",")
			return fmt.Errorf("config %s: %s = %q: %v", path, key, val, err)
		}
	}
	return nil
}

// fromFlags takes the value of every setting that fs has a flag for: the
// effective settings, for 'qfleet config print'.
func (s *flagSettings) fromFlags(fs *flag.FlagSet) {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		fl := fs.Lookup(flagName(v.Type().Field(i)))
		if fl == nil {
			continue
		}
		val := fl.Value.String()
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(val)
		case reflect.Bool:
			b, _ := strconv.ParseBool(val)
			f.SetBool(b)
		case reflect.Int:
			n, _ := strconv.Atoi(val)
			f.SetInt(int64(n))
		}
	}
}
