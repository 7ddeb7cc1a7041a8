package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// faultProxy runs a toxiproxy TCP proxy (as a library) from listen to
// upstream that adds latency ± jitter (milliseconds) in both directions, until
// SIGTERM. The test binary runs it inside a lab host (multihostHelper), so
// that remote messaging to a node can be made to pass through it with
// `qfleet node --advertise HOST:PROXYPORT`.
func faultProxy(listen, upstream, latency, jitter string) int {
	lat, err1 := strconv.Atoi(latency)
	jit, err2 := strconv.Atoi(jitter)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "proxy: latency and jitter are milliseconds")
		return 2
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	srv.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	p := toxiproxy.NewProxy(srv, "qfleet", listen, upstream)
	if err := p.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		return 1
	}
	for _, stream := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":"%s","toxicity":1.0,"attributes":{"latency":%d,"jitter":%d}}`, stream, stream, lat, jit)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			fmt.Fprintln(os.Stderr, "proxy: toxic:", err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "proxy %s -> %s: latency %d ms ± %d ms each way\n", listen, upstream, lat, jit)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	p.Stop()
	return 0
}
