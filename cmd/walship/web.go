package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

// newRegistry returns the process's private registry with the Go and
// process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// webServer serves /metrics, /-/healthy, /-/ready, and with the lifecycle
// API /-/reload and /-/quit. Reload and quit requests are handed to the
// command's main loop, which answers them.
type webServer struct {
	srv     *http.Server
	ln      net.Listener
	log     *slog.Logger
	ready   atomic.Bool
	reload  chan chan error // a reload request and where its result goes
	quit    chan struct{}   // a /-/quit request
	served  chan error
	closing chan struct{} // closed when the main loop no longer answers
}

// startWeb listens on flags.listenAddress (or uses ln when not nil) and
// serves in the background.
func startWeb(flags *commonFlags, reg *prometheus.Registry, logger *slog.Logger, ln net.Listener) (*webServer, error) {
	if flags.webConfigFile != "" {
		if err := web.Validate(flags.webConfigFile); err != nil {
			return nil, fmt.Errorf("--web.config.file=%s: %w", flags.webConfigFile, err)
		}
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", flags.listenAddress); err != nil {
			return nil, fmt.Errorf("--web.listen-address=%s: %w", flags.listenAddress, err)
		}
	}
	s := &webServer{
		ln:      ln,
		log:     logger.With("component", "web"),
		reload:  make(chan chan error),
		quit:    make(chan struct{}, 1),
		served:  make(chan error, 1),
		closing: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "walship is Healthy.")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "Service Unavailable")
			return
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "walship is Ready.")
	})
	handlePprof(mux)
	mux.HandleFunc("/-/reload", s.lifecycle(flags.enableLifecycle, s.handleReload))
	mux.HandleFunc("/-/quit", s.lifecycle(flags.enableLifecycle, s.handleQuit))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}

	noSystemd := false
	toolkit := &web.FlagConfig{
		WebListenAddresses: &[]string{ln.Addr().String()},
		WebSystemdSocket:   &noSystemd,
		WebConfigFile:      &flags.webConfigFile,
	}
	go func() { s.served <- web.Serve(ln, s.srv, toolkit, s.log) }()
	logger.Info("Web server listening", "address", ln.Addr().String())
	return s, nil
}

// lifecycle guards the lifecycle endpoints: POST or PUT, and only when
// --web.enable-lifecycle is set.
func (s *webServer) lifecycle(enabled bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !enabled {
			http.Error(w, "Lifecycle API is not enabled.", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "Only POST or PUT requests allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

func (s *webServer) handleReload(w http.ResponseWriter, r *http.Request) {
	result := make(chan error, 1)
	select {
	case s.reload <- result:
	case <-s.closing:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		return
	}
	select {
	case err := <-result:
		if err != nil {
			http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Configuration reloaded.")
	case <-r.Context().Done():
	}
}

func (s *webServer) handleQuit(w http.ResponseWriter, _ *http.Request) {
	select {
	case s.quit <- struct{}{}:
	default:
	}
	fmt.Fprintln(w, "Requesting termination... Goodbye!")
}

// stopAnswering marks the process not ready and answers reload requests
// with 503 from now on: the main loop no longer takes them.
func (s *webServer) stopAnswering() {
	s.ready.Store(false)
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
}

// shutdown stops serving, waiting a few seconds for requests in flight.
func (s *webServer) shutdown() {
	s.stopAnswering()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.log.Warn("Web server shutdown", "err", err)
	}
	if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("Web server stopped", "err", err)
	}
}
