package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rollout-runner/rollout-runner/tests/cluster/procpod"
)

// The controllers a rollout controller's tests need. Deliberately left out:
// node-lifecycle-controller and taint-eviction-controller (they would mark the fake nodes
// unreachable without kubelet heartbeats and evict pods), node-ipam, volumes, HPA.
var controllers = []string{
	"deployment-controller", "replicaset-controller", "replicationcontroller-controller",
	"statefulset-controller", "daemonset-controller", "job-controller", "cronjob-controller",
	"ttl-after-finished-controller", "garbage-collector-controller", "namespace-controller",
	"serviceaccount-controller", "serviceaccount-token-controller", "endpoints-controller",
	"endpointslice-controller", "endpointslice-mirroring-controller",
	"pod-garbage-collector-controller", "disruption-controller", "resourcequota-controller",
	"clusterrole-aggregation-controller", "root-ca-certificate-publisher-controller",
	"service-cidr-controller", "validatingadmissionpolicy-status-controller",
}

// ReadyInfo is written as JSON to DIR/ready once the control plane serves requests.
type ReadyInfo struct {
	Kubeconfig     string         `json:"kubeconfig"`
	Server         string         `json:"server"`
	Etcd           string         `json:"etcd"`
	SupervisorPID  int            `json:"supervisorPid"`
	PIDs           map[string]int `json:"pids"`
	StartupSeconds float64        `json:"startupSeconds"`
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type child struct {
	name string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// restarting: the supervisor stops this child on purpose (restart.go); its exit is not
	// a failure of the control plane.
	restarting atomic.Bool
}

func up(argv []string) int {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory: kubeconfig, ready, pki/, etcd/ and *.log are (re)created in it (required)")
	nodes := fs.Int("nodes", 2, "number of fake nodes")
	readyDelay := fs.Duration("pod-ready-delay", time.Second, "default delay between a pod starting to run and becoming Ready")
	runDuration := fs.Duration("pod-run-duration", time.Second, "default run time of pods that terminate (restartPolicy Never/OnFailure, e.g. Job pods)")
	withScheduler := fs.Bool("scheduler", true, "run kube-scheduler")
	withKubelet := fs.Bool("fake-kubelet", true, "run the fake kubelet (nodes + pod lifecycle)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up if the control plane is not ready after this long")
	verbosity := fs.Int("v", 0, "log verbosity of the upstream components")
	var runImages stringList
	fs.Var(&runImages, "run-image", "NAME=PATH or NAME=PATH:CONFIG: containers whose image is NAME (any tag or digest unless NAME has one) run as host processes of PATH, with the image config JSON CONFIG (default PATH.image.json if it exists); repeatable")
	podCIDR := fs.String("process-pod-cidr", defaultProcessPodCIDR, "pod IPs of process pods; outside 127.0.0.0/8 a `local` route on lo makes the range local")
	crashLoop := fs.Duration("crash-loop-backoff", 10*time.Second, "first CrashLoopBackOff delay of process pods (the kubelet's 10s), doubling up to 5m")
	var crdDirs stringList
	fs.Var(&crdDirs, "crds", "directory of CRD manifests (*.yaml, *.yml, *.json) to install before ready; repeatable; missing or empty directories are skipped")
	_ = fs.Parse(argv)
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: k8s-harness up --dir DIR [flags]")
		fs.PrintDefaults()
		return 2
	}
	log.SetPrefix("k8s-harness: ")
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	start := time.Now()
	for i, s := range runImages {
		// Fail now on a typo, not in the fake kubelet's log; pass absolute paths on.
		ri, err := procpod.ParseRunImage(s)
		if err != nil {
			log.Print(err)
			return 2
		}
		name, _, _ := strings.Cut(s, "=")
		runImages[i] = name + "=" + ri.Path
		if ri.ConfigFile != "" {
			runImages[i] += ":" + ri.ConfigFile
		}
	}
	if len(runImages) > 0 && (!*withKubelet) {
		log.Print("--run-image needs the fake kubelet")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	d, err := filepath.Abs(*dir)
	if err != nil {
		log.Print(err)
		return 1
	}
	if err := resetDir(d); err != nil {
		log.Print(err)
		return 1
	}

	pki := filepath.Join(d, "pki")
	bundle, err := writePKI(pki)
	if err != nil {
		log.Printf("pki: %v", err)
		return 1
	}
	ports, err := freePorts(5)
	if err != nil {
		log.Printf("ports: %v", err)
		return 1
	}
	apiPort, etcdClient, etcdPeer, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	kubeconfig := filepath.Join(d, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, bundle); err != nil {
		log.Printf("kubeconfig: %v", err)
		return 1
	}

	etcdURL, etcd, err := startEtcd(filepath.Join(d, "etcd"), filepath.Join(d, "etcd.log"), etcdClient, etcdPeer)
	if err != nil {
		log.Printf("etcd: %v", err)
		return 1
	}
	log.Printf("etcd serving on %s (%.1fs)", etcdURL, time.Since(start).Seconds())

	self, err := os.Executable()
	if err != nil {
		etcd.Close()
		log.Print(err)
		return 1
	}
	var kids []*child
	// mu guards kids and etcd against the restart endpoint (restart.go).
	var mu sync.Mutex
	exited := make(chan *child, 8)
	// startChild starts the component `name`; its log is appended to, so a restarted
	// component's log keeps what it wrote before.
	startChild := func(name string, args []string) (*child, error) {
		logf, err := os.OpenFile(filepath.Join(d, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		c := exec.Command(self, append([]string{name}, args...)...)
		c.Stdout, c.Stderr = logf, logf
		// Children die with the supervisor even when it is killed with SIGKILL, and live in
		// their own process group: a Ctrl-C reaches only the supervisor, which stops them
		// in order.
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := c.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		k := &child{name: name, args: args, cmd: c, done: make(chan struct{})}
		go func() {
			k.err = c.Wait()
			logf.Close()
			close(k.done)
			if !k.restarting.Load() {
				exited <- k
			}
		}()
		log.Printf("started %s (pid %d, log %s.log)", name, c.Process.Pid, name)
		return k, nil
	}
	spawn := func(name string, args ...string) (*child, error) {
		k, err := startChild(name, args)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		kids = append(kids, k)
		mu.Unlock()
		return k, nil
	}
	stopping := false
	shutdown := func() {
		stopping = true
		mu.Lock()
		defer mu.Unlock()
		// Reverse start order: clients first, the apiserver last, etcd after it.
		for i := len(kids) - 1; i >= 0; i-- {
			k := kids[i]
			select {
			case <-k.done:
				continue
			default:
			}
			_ = k.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-k.done:
			case <-time.After(15 * time.Second):
				log.Printf("%s did not stop after SIGTERM, killing it", k.name)
				_ = k.cmd.Process.Kill()
				<-k.done
			}
		}
		etcd.Close()
		_ = os.Remove(filepath.Join(d, "ready"))
		_ = os.Remove(filepath.Join(d, controlSocket))
		log.Print("stopped")
	}
	defer func() {
		if !stopping {
			shutdown()
		}
	}()
	fail := func(format string, args ...any) int {
		log.Printf(format, args...)
		for _, k := range kids {
			select {
			case <-k.done:
				log.Printf("%s exited: %v; last lines of %s.log:\n%s", k.name, k.err, k.name, tail(filepath.Join(d, k.name+".log"), 30))
			default:
			}
		}
		return 1
	}

	if _, err := spawn("kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		// The endpoint reconciler would publish 127.0.0.1 as the kubernetes Service's
		// endpoint, which Endpoints validation rejects (loopback).
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+filepath.Join(pki, "apiserver.crt"), "--tls-private-key-file="+filepath.Join(pki, "apiserver.key"),
		"--client-ca-file="+filepath.Join(pki, "ca.crt"),
		"--requestheader-client-ca-file="+filepath.Join(pki, "front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+filepath.Join(pki, "front-proxy-client.crt"),
		"--proxy-client-key-file="+filepath.Join(pki, "front-proxy-client.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(pki, "sa.key"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		// The default admission chain stays on, except the plugin that needs the node
		// lifecycle controller (it taints new nodes not-ready until that controller clears it).
		"--disable-admission-plugins=TaintNodesByCondition",
		"--allow-privileged=true", "--profiling=false",
		// pods/log of process pods: the fake kubelet's endpoint is the nodes' InternalDNS
		// address (127.0.0.1); nodes without one are reached as before.
		"--kubelet-preferred-address-types=InternalDNS,Hostname,InternalIP,ExternalDNS,ExternalIP",
		"--v="+strconv.Itoa(*verbosity)); err != nil {
		return fail("kube-apiserver: %v", err)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fail("kubeconfig: %v", err)
	}
	rc.QPS, rc.Burst = 200, 400
	rc.Timeout = 10 * time.Second
	cs := kubernetes.NewForConfigOrDie(rc)
	deadline := start.Add(*timeout)
	wait := func(what string, ok func() bool) error {
		for !ok() {
			select {
			case k := <-exited:
				exited <- k
				return fmt.Errorf("%s: %s exited: %v", what, k.name, k.err)
			case <-ctx.Done():
				return fmt.Errorf("%s: interrupted", what)
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not ready after %s", what, *timeout)
			}
		}
		return nil
	}
	if err := wait("kube-apiserver /readyz", func() bool {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil
	}); err != nil {
		return fail("%v", err)
	}
	log.Printf("kube-apiserver ready at %s (%.1fs)", server, time.Since(start).Seconds())

	common := []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--kube-api-qps=500", "--kube-api-burst=1000",
		"--v=" + strconv.Itoa(*verbosity),
	}
	if _, err := spawn("kube-controller-manager", append(common,
		"--secure-port="+strconv.Itoa(kcmPort),
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+filepath.Join(pki, "ca.crt"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--controllers="+strings.Join(controllers, ","),
		// Fast feedback for tests: no sync batching delays.
		"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
		"--concurrent-job-syncs=10", "--concurrent-gc-syncs=20",
	)...); err != nil {
		return fail("kube-controller-manager: %v", err)
	}
	if *withScheduler {
		if _, err := spawn("kube-scheduler", append(common, "--secure-port="+strconv.Itoa(schedPort))...); err != nil {
			return fail("kube-scheduler: %v", err)
		}
	}
	if *withKubelet {
		args := []string{
			"--kubeconfig=" + kubeconfig,
			"--nodes=" + strconv.Itoa(*nodes),
			"--pod-ready-delay=" + readyDelay.String(),
			"--pod-run-duration=" + runDuration.String(),
			"--bind=" + strconv.FormatBool(!*withScheduler),
			"--process-pod-cidr=" + *podCIDR,
			"--crash-loop-backoff=" + crashLoop.String(),
			"--pods-dir=" + filepath.Join(d, "pods"),
		}
		for _, s := range runImages {
			args = append(args, "--run-image="+s)
		}
		if _, err := spawn("fake-kubelet", args...); err != nil {
			return fail("fake-kubelet: %v", err)
		}
	}

	if n, err := installCRDs(ctx, rc, crdDirs, func() error {
		if time.Now().After(deadline) {
			return errors.New("timeout")
		}
		return ctx.Err()
	}); err != nil {
		return fail("installing CRDs: %v", err)
	} else if n > 0 {
		log.Printf("installed %d CRDs, all Established (%.1fs)", n, time.Since(start).Seconds())
	}

	// Pods can be created once the namespace's default ServiceAccount exists (ServiceAccount
	// admission); the serviceaccount controller makes it, so this also proves the KCM runs.
	if err := wait("default ServiceAccount", func() bool {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return fail("%v", err)
	}
	if *withKubelet {
		if err := wait("fake nodes Ready", func() bool { return nodesReady(ctx, cs, *nodes) }); err != nil {
			return fail("%v", err)
		}
	}

	info := ReadyInfo{Kubeconfig: kubeconfig, Server: server, Etcd: etcdURL, SupervisorPID: os.Getpid(),
		PIDs: map[string]int{}, StartupSeconds: time.Since(start).Seconds()}
	writeReady := func() error {
		for _, k := range kids {
			info.PIDs[k.name] = k.cmd.Process.Pid
		}
		return writeJSONAtomic(filepath.Join(d, "ready"), info)
	}
	control, err := serveControl(ctx, filepath.Join(d, controlSocket), &restarter{
		mu: &mu, kids: &kids, etcd: &etcd, startChild: startChild, writeReady: writeReady,
		startEtcd: func() (*embed.Etcd, error) {
			_, e, err := startEtcd(filepath.Join(d, "etcd"), filepath.Join(d, "etcd.log"), etcdClient, etcdPeer)
			return e, err
		},
		apiserverReady: func(ctx context.Context) bool {
			_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil
		},
	})
	if err != nil {
		return fail("control socket: %v", err)
	}
	defer control.Close()
	mu.Lock()
	err = writeReady()
	mu.Unlock()
	if err != nil {
		return fail("ready file: %v", err)
	}
	log.Printf("ready in %.1fs: KUBECONFIG=%s", info.StartupSeconds, kubeconfig)

	select {
	case <-ctx.Done():
		log.Print("signal received, stopping")
		stop()
		shutdown()
		return 0
	case k := <-exited:
		exited <- k
		return fail("%s exited unexpectedly", k.name)
	}
}

// resetDir creates dir and removes what a previous run of the harness left in it (only
// the entries the harness itself writes).
func resetDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"ready", "kubeconfig", "pki", "etcd", "pods", controlSocket} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		_ = os.Remove(l)
	}
	return nil
}

func nodesReady(ctx context.Context, cs kubernetes.Interface, want int) bool {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	ready := 0
	for _, n := range list.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" {
				ready++
			}
		}
	}
	return ready >= want
}

// freePorts returns n distinct free loopback ports, holding all listeners open until every
// port is chosen so the kernel cannot hand out the same one twice.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func startEtcd(dataDir, logFile string, clientPort, peerPort int) (string, *embed.Etcd, error) {
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	cfg := embed.NewConfig()
	cfg.Name = "harness"
	cfg.Dir = dataDir
	cfg.UnsafeNoFsync = true // test data only: no fsync, much faster on slow disks
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{logFile}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return cu.String(), e, nil
	case err := <-e.Err():
		e.Close()
		return "", nil, err
	case <-time.After(60 * time.Second):
		e.Close()
		return "", nil, errors.New("etcd did not become ready in 60s")
	}
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
