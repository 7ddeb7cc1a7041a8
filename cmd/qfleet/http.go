package main

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qfleet/qfleet/actors"
)

// newHTTPHandler serves /metrics (Prometheus text), /status (JSON) and / (a
// page that refreshes itself), on a mux of its own, never the default one.
func newHTTPHandler(node string, roles []string, members func() []string, m *actors.Metrics, started time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		st := m.Status()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"node": node, "roles": roles, "members": members(),
			"uptime_seconds": time.Since(started).Seconds(), "weights_version": st.WeightsVersion,
			"counters": map[string]any{
				"env_steps": st.EnvSteps, "episodes": st.Episodes, "learner_updates": st.LearnerUpdates,
				"experience_rejected": st.ExperienceRejected, "experience_sent": st.ExperienceSent,
				"experience_dropped": st.ExperienceDropped, "experience_lost": st.ExperienceLost,
				"replay_inserted": st.ReplayInserted, "replay_size": st.ReplaySize,
			},
			"runners":         st.Runners,
			"mean_return_100": finite(st.Mean100), "mean_return_100_episodes": st.Mean100Count,
			"mean_return_100_all": finite(st.Mean100All), "solved": st.Solved,
		})
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(statusPage))
	})
	return mux
}

const statusPage = `<!doctype html><html><head><meta charset="utf-8"><title>qfleet</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td{padding:2px 12px}</style></head>
<body><h1>qfleet</h1><table id="t"></table>
<script>
async function poll(){
  try{const s=await (await fetch('/status')).json();
    const rows=[['node',s.node],['mean100',s.mean_return_100.toFixed(1)+' ('+s.mean_return_100_episodes+' episodes)'],
      ['mean100 (all runners)',s.mean_return_100_all.toFixed(1)],['env steps',s.counters.env_steps],
      ['episodes',s.counters.episodes],['learner updates',s.counters.learner_updates],
      ['weights version',s.weights_version],['solved',s.solved]];
    document.getElementById('t').innerHTML=rows.map(r=>'<tr><td>'+r[0]+'</td><td>'+r[1]+'</td></tr>').join('');
  }catch(e){}
  setTimeout(poll,1000);
}
poll();
</script></body></html>`
