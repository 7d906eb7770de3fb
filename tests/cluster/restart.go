package main

// Restarting one component of a running control plane, for tests of what a client does while
// the API server or etcd goes away and comes back:
//
//	k8s-harness restart --dir DIR [--down D] [--kill] kube-apiserver|etcd|COMPONENT
//
// asks the `up` process serving DIR (over the unix socket DIR/control.sock) to stop the
// component, keep it down for D, and start it again exactly as before: the apiserver with the
// same flags (same port, same certificates), etcd on the same ports with the same data
// directory. Everything else keeps running. The command returns once the component is back
// and the apiserver answers /readyz again, and prints what happened as JSON.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// controlSocket is the name of the `up` process's control socket in its directory.
const controlSocket = "control.sock"

// How long a restarted component may take to serve again.
const restartTimeout = 3 * time.Minute

// restarter restarts the components of one `up` process.
type restarter struct {
	mu             *sync.Mutex
	kids           *[]*child
	etcd           **embed.Etcd
	startChild     func(name string, args []string) (*child, error)
	startEtcd      func() (*embed.Etcd, error)
	apiserverReady func(ctx context.Context) bool
	writeReady     func() error
}

// RestartResult is the control endpoint's answer, printed by `k8s-harness restart`.
type RestartResult struct {
	Component string `json:"component"`
	// StoppedSeconds: from the request until the old process (or embedded etcd) was gone.
	StoppedSeconds float64 `json:"stoppedSeconds"`
	// DownSeconds: from the old process gone until the new one was started.
	DownSeconds float64 `json:"downSeconds"`
	// ReadySeconds: from the request until the apiserver answered /readyz again.
	ReadySeconds float64 `json:"readySeconds"`
	PID          int     `json:"pid,omitempty"`
}

func (r *restarter) restart(ctx context.Context, name string, down time.Duration, kill bool) (RestartResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	began := time.Now()
	res := RestartResult{Component: name}
	if name == "etcd" {
		(*r.etcd).Close()
		res.StoppedSeconds = time.Since(began).Seconds()
		log.Printf("restart: etcd stopped (%.1fs)", res.StoppedSeconds)
		sleep(ctx, down)
		res.DownSeconds = time.Since(began).Seconds() - res.StoppedSeconds
		e, err := r.startEtcd()
		if err != nil {
			return res, fmt.Errorf("starting etcd again: %w", err)
		}
		*r.etcd = e
		res.PID = os.Getpid()
	} else {
		index := -1
		for i, k := range *r.kids {
			if k.name == name {
				index = i
			}
		}
		if index < 0 {
			return res, fmt.Errorf("no component %q (known: etcd, %s)", name, r.names())
		}
		old := (*r.kids)[index]
		old.restarting.Store(true)
		signal := syscall.SIGTERM
		if kill {
			signal = syscall.SIGKILL
		}
		_ = old.cmd.Process.Signal(signal)
		select {
		case <-old.done:
		case <-time.After(15 * time.Second):
			log.Printf("restart: %s did not stop after SIGTERM, killing it", name)
			_ = old.cmd.Process.Kill()
			<-old.done
		}
		res.StoppedSeconds = time.Since(began).Seconds()
		log.Printf("restart: %s stopped (%v, %.1fs)", name, old.err, res.StoppedSeconds)
		sleep(ctx, down)
		res.DownSeconds = time.Since(began).Seconds() - res.StoppedSeconds
		k, err := r.startChild(name, old.args)
		if err != nil {
			return res, fmt.Errorf("starting %s again: %w", name, err)
		}
		(*r.kids)[index] = k
		res.PID = k.cmd.Process.Pid
		if err := r.writeReady(); err != nil {
			return res, err
		}
	}
	deadline := time.Now().Add(restartTimeout)
	for !r.apiserverReady(ctx) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return res, fmt.Errorf("the apiserver did not answer /readyz within %s of restarting %s", restartTimeout, name)
		}
		sleep(ctx, 200*time.Millisecond)
	}
	res.ReadySeconds = time.Since(began).Seconds()
	log.Printf("restart: %s back, apiserver ready %.1fs after the request", name, res.ReadySeconds)
	return res, nil
}

func (r *restarter) names() string {
	var names []string
	for _, k := range *r.kids {
		names = append(names, k.name)
	}
	return strings.Join(names, ", ")
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// serveControl serves `POST /restart?component=NAME&down=D&kill=true` on the unix socket path.
func serveControl(ctx context.Context, path string, r *restarter) (io.Closer, error) {
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		var down time.Duration
		if v := q.Get("down"); v != "" {
			if down, err = time.ParseDuration(v); err != nil || down < 0 {
				http.Error(w, fmt.Sprintf("down: %q is not a duration like 2s", v), http.StatusBadRequest)
				return
			}
		}
		res, err := r.restart(ctx, q.Get("component"), down, q.Get("kill") == "true")
		if err != nil {
			log.Printf("restart: %v", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	return srv, nil
}

func restartMain(argv []string) int {
	fs := flag.NewFlagSet("restart", flag.ExitOnError)
	dir := fs.String("dir", "", "the state directory of a running `k8s-harness up` (required)")
	down := fs.Duration("down", 0, "how long the component stays stopped before it starts again")
	kill := fs.Bool("kill", false, "stop a process component with SIGKILL (a crash) instead of SIGTERM")
	_ = fs.Parse(argv)
	if *dir == "" || fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: k8s-harness restart --dir DIR [--down D] [--kill] kube-apiserver|etcd|kube-controller-manager|kube-scheduler|fake-kubelet")
		fs.PrintDefaults()
		return 2
	}
	socket := filepath.Join(*dir, controlSocket)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
	url := fmt.Sprintf("http://harness/restart?component=%s&down=%s&kill=%t", fs.Arg(0), down.String(), *kill)
	resp, err := client.Post(url, "", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k8s-harness restart: %v (is `k8s-harness up --dir %s` running?)\n", err, *dir)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "k8s-harness restart: %s: %s", resp.Status, body)
		return 1
	}
	os.Stdout.Write(body)
	return 0
}
