// Command api-fault-proxy is a TLS reverse proxy in front of a Kubernetes apiserver that
// injects faults (error statuses, throttling, conflicts, delays, resets, early watch ends,
// 410 Gone on watch resume, network partitions) by rule, for rollout-runner's e2e tests.
// See README.md.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "api-fault-proxy:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		kubeconfigPath = flag.String("kubeconfig", "", "kubeconfig of the apiserver (required)")
		kcContext      = flag.String("context", "", "kubeconfig context (default: current-context)")
		listen         = flag.String("listen", "127.0.0.1:0", "address of the proxy (TLS)")
		adminListen    = flag.String("admin-listen", "127.0.0.1:0", "address of the admin API (plain HTTP; keep it on loopback)")
		outKubeconfig  = flag.String("out-kubeconfig", "", "write a kubeconfig pointing at the proxy here (required)")
		seed           = flag.Uint64("seed", 1, "seed of the PRNG that makes every fault decision")
		rulesArg       = flag.String("rules", "", "rules: inline JSON list or a file holding one")
		profile        = flag.String("profile", "", "start with a named rule set (ten-percent); --rules are appended")
		statsFile      = flag.String("stats-file", "", "write /stats here every second and at exit")
		readyFile      = flag.String("ready-file", "", "write {url, admin, kubeconfig, pid, seed} here once serving")
		logFile        = flag.String("log", "", "decision log (default stderr)")
		logAll         = flag.Bool("log-all", false, "log every request, not only those a rule applied to")
		http2          = flag.Bool("http2", true, "offer HTTP/2 to clients (ALPN); resets then reset the stream only")
		startPartition = flag.String("partition", "", "start partitioned: hang or reset (heal with POST /heal)")
	)
	flag.Parse()
	if *kubeconfigPath == "" || *outKubeconfig == "" {
		flag.Usage()
		return errors.New("--kubeconfig and --out-kubeconfig are required")
	}
	logOut := io.Writer(os.Stderr)
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut = f
	}
	logger := log.New(logOut, "api-fault-proxy: ", log.Ltime|log.Lmicroseconds)

	kc, err := loadKubeconfig(*kubeconfigPath, *kcContext)
	if err != nil {
		return err
	}
	auth, err := kc.upstream()
	if err != nil {
		return err
	}
	upstream, err := url.Parse(kc.server)
	if err != nil {
		return fmt.Errorf("kubeconfig server %q: %w", kc.server, err)
	}
	var rules []*Rule
	if *profile != "" {
		mk, ok := profiles[*profile]
		if !ok {
			return fmt.Errorf("unknown profile %q", *profile)
		}
		rules = mk()
	}
	if *rulesArg != "" {
		more, err := parseRules(*rulesArg)
		if err != nil {
			return err
		}
		rules = append(rules, more...)
	}
	switch *startPartition {
	case "", "hang", "reset":
	default:
		return errors.New("--partition must be hang or reset")
	}

	p := newProxy(upstream, auth, *seed, rules, logger)
	p.logAll = *logAll
	if *startPartition != "" {
		p.part.set(*startPartition, 0)
	}
	cert, caPEM, err := servingCert()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", *adminListen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           p,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // resets and partitions make the server log noise
	}
	if !*http2 {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	adminSrv := &http.Server{Handler: p.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	proxyURL := "https://" + ln.Addr().String()
	adminURL := "http://" + adminLn.Addr().String()
	if err := kc.writeFaulty(*outKubeconfig, proxyURL, caPEM); err != nil {
		return fmt.Errorf("writing %s: %w", *outKubeconfig, err)
	}

	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(&faultListener{Listener: ln, pt: p.part}, "", "") }()
	go func() { errc <- adminSrv.Serve(adminLn) }()

	writeStats := func() {
		if *statsFile == "" {
			return
		}
		b, _ := json.MarshalIndent(p.stats(), "", "  ")
		if err := writeFileAtomic(*statsFile, append(b, '\n'), 0o644); err != nil {
			logger.Printf("stats file: %v", err)
		}
	}
	if *readyFile != "" {
		b, _ := json.MarshalIndent(map[string]any{
			"url": proxyURL, "admin": adminURL, "kubeconfig": *outKubeconfig, "upstream": kc.server,
			"pid": os.Getpid(), "seed": *seed,
		}, "", "  ")
		if err := writeFileAtomic(*readyFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("listening on %s\nadmin on %s\nkubeconfig %s\n", proxyURL, adminURL, *outKubeconfig)
	logger.Printf("upstream %s, seed %d, %d rules", kc.server, *seed, len(rules))

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var runErr error
loop:
	for {
		select {
		case s := <-sigc:
			logger.Printf("%v: shutting down", s)
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-tick.C:
			writeStats()
		}
	}
	p.part.heal() // let held connections finish or fail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = adminSrv.Shutdown(ctx)
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close() // open watches never go idle
	}
	writeStats()
	if *readyFile != "" {
		_ = os.Remove(*readyFile)
	}
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	return nil
}
