package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/qfleet/qfleet/cluster"
)

const certsHelp = `Usage: qfleet certs --dir DIR --node NAME=HOST[,HOST...] [--node ...]

Makes what a new secured cluster needs, in DIR:
  ca.crt, ca.key        the cluster CA (made once; kept if it exists)
  NAME.crt, NAME.key    a certificate per node, signed by the CA, valid for
                        the hosts (IPs or DNS names) peers dial it at
  cluster.key           the shared gossip key (32 random bytes, base64;
                        made once; kept if it exists)
Copy ca.crt, cluster.key and a node's NAME.crt/NAME.key to that node, then run
  qfleet node --cluster-key-file cluster.key --tls-ca ca.crt \
              --tls-cert NAME.crt --tls-key NAME.key ...
Keep ca.key only where certificates are made.

Flags:
`

// nodeList collects repeated --node flags.
type nodeList []string

func (n *nodeList) String() string     { return strings.Join(*n, " ") }
func (n *nodeList) Set(v string) error { *n = append(*n, v); return nil }

func runCerts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet certs", flag.ContinueOnError)
	dir := fs.String("dir", "", "`directory` for the CA, node certificates and cluster key")
	var nodes nodeList
	fs.Var(&nodes, "node", "`NAME=HOST[,HOST...]`: a node certificate (repeat for each node)")
	if err := parseFlags(fs, certsHelp, args, stdout, stderr); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{errors.New("--dir is required")}
	}
	type nodeSpec struct {
		name  string
		hosts []string
	}
	var specs []nodeSpec
	for _, n := range nodes {
		name, hosts, ok := strings.Cut(n, "=")
		if !ok || name == "" || len(splitList(hosts)) == 0 {
			return usageError{fmt.Errorf("--node %q: want NAME=HOST[,HOST...]", n)}
		}
		specs = append(specs, nodeSpec{name, splitList(hosts)})
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*dir, cluster.CACertFile)); errors.Is(err, os.ErrNotExist) {
		ca, err := cluster.GenerateCA(*dir)
		if err != nil {
			return fmt.Errorf("CA: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s and %s\n", ca.Cert, ca.Key)
	} else {
		fmt.Fprintf(stdout, "using the existing CA in %s\n", *dir)
	}
	for _, s := range specs {
		f, err := cluster.GenerateNodeCert(*dir, s.name, s.hosts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s and %s for %s\n", f.Cert, f.Key, strings.Join(s.hosts, ", "))
	}
	keyPath := filepath.Join(*dir, cluster.ClusterKeyFile)
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		if err := cluster.GenerateClusterKey(keyPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", keyPath)
	}
	return nil
}
