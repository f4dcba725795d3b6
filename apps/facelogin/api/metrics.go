package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// metrics are this Server's Prometheus metrics, in a registry of its own so several
// Servers can live in one process (tests, benchmarks).
type metrics struct {
	reg     *prometheus.Registry
	stage   *prometheus.HistogramVec
	results *prometheus.CounterVec
	rejects *prometheus.CounterVec
	syncs   prometheus.Counter
	wsOpen  prometheus.Gauge
}

func newMetrics(ix *match.Index) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "facelogin_stage_duration_seconds",
			Help:    "Time per recognition stage: decode+detect+describe (face engine), match (index search).",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"stage"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "facelogin_login_results_total",
			Help: "Face login attempts by result: recognized or unknown.",
		}, []string{"result"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "facelogin_rejects_total",
			Help: "Frames, samples and attempts refused, by reason.",
		}, []string{"reason"}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "facelogin_index_refreshes_total",
			Help: "People whose samples were re-read after a face change in the store.",
		}),
		wsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "facelogin_login_websockets",
			Help: "Open login WebSockets.",
		}),
	}
	m.reg.MustRegister(m.stage, m.results, m.rejects, m.syncs, m.wsOpen,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "facelogin_index_descriptors",
			Help: "Descriptors in the in-memory index.",
		}, func() float64 { return float64(ix.Len()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
