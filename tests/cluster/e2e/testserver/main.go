// Command testserver is a tiny container program for the process pod end-to-end tests: it
// prints its environment, serves on $POD_IP:8080 (GET /healthz: 503 until READY_AFTER has
// passed, then 200; GET /info: what it sees; GET /whoami: who the apiserver says its
// service account token is, with in-cluster config), and exits 0 on SIGTERM.
//
// For the data plane tests (rollout-runner's runner/tests/it/dataplane_e2e.rs) it is also the
// application being released: any other path answers {"pod", "version", "terminating"} (pod =
// hostname, version = $VERSION, terminating = SIGTERM received) and is counted per path
// (GET /counts: the counts, read on the pod IP to see mirrored requests). With
// DRAIN_AFTER_TERM set, SIGTERM makes /healthz fail and the server keeps serving that long,
// then shuts down gracefully (finishing requests in flight), as servers behind a load balancer
// do while endpoints are removed.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	env := os.Environ()
	sort.Strings(env)
	for _, e := range env {
		fmt.Println("env:", e)
	}
	ready := time.Now()
	if d, err := time.ParseDuration(os.Getenv("READY_AFTER")); err == nil {
		ready = ready.Add(d)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("POD_IP"), "8080"))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr(), "as uid", os.Getuid())
	var terminating atomic.Bool
	var countsMu sync.Mutex
	counts := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if terminating.Load() {
			http.Error(w, "terminating", http.StatusServiceUnavailable)
			return
		}
		if time.Now().Before(ready) {
			http.Error(w, "not ready yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		files := map[string]string{}
		for _, f := range []string{"token", "ca.crt", "namespace"} {
			b, err := os.ReadFile(saDir + "/" + f)
			if err != nil {
				b = []byte("error: " + err.Error())
			}
			files[f] = string(b)
		}
		host, _ := os.Hostname()
		_ = json.NewEncoder(w).Encode(map[string]any{"uid": os.Getuid(), "gid": os.Getgid(), "hostname": host,
			"args": os.Args, "env": env, "serviceAccount": files})
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		out, err := whoami()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Write(out)
	})
	host, _ := os.Hostname()
	version := os.Getenv("VERSION")
	mux.HandleFunc("/counts", func(w http.ResponseWriter, r *http.Request) {
		countsMu.Lock()
		defer countsMu.Unlock()
		_ = json.NewEncoder(w).Encode(counts)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		countsMu.Lock()
		counts[r.URL.Path]++
		countsMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"pod": host, "version": version,
			"terminating": terminating.Load()})
	})
	srv := &http.Server{Handler: mux}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { _ = srv.Serve(l) }()
	<-sig
	drain, err := time.ParseDuration(os.Getenv("DRAIN_AFTER_TERM"))
	if err != nil || drain <= 0 {
		fmt.Println("got SIGTERM, exiting")
		return
	}
	terminating.Store(true)
	fmt.Println("got SIGTERM, serving", drain, "more, then exiting")
	time.Sleep(drain)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	fmt.Println("drained, exiting")
}

// whoami posts a SelfSubjectReview with the in-cluster credentials.
func whoami() ([]byte, error) {
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in ca.crt")
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")) +
		"/apis/authentication.k8s.io/v1/selfsubjectreviews"
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`))
	req.Header.Set("Authorization", "Bearer "+string(token))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, nil
}
