package procpod

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Options configure the process pod runtime of the fake kubelet.
type Options struct {
	Images          []RunImage
	PodsDir         string // D/pods: one directory per pod, NS_NAME_UID, with CONTAINER.log and volumes/
	Self            string // the k8s-harness binary (re-executed as `pod-exec`)
	APIHost         string // the apiserver, for KUBERNETES_SERVICE_HOST/PORT
	APIPort         string
	IPs             *IPAllocator
	CrashLoopBase   time.Duration // first CrashLoopBackOff delay (kubelet: 10s), doubled per restart
	CrashLoopMax    time.Duration // cap (kubelet: 5m)
	NodeAllocatable corev1.ResourceList
	Client          kubernetes.Interface
	Notify          func(key string) // the pod's status changed: sync it
}

// Manager runs the process pods of one fake kubelet.
type Manager struct {
	o       Options
	objs    Objects
	nsenter string
	mu      sync.Mutex
	pods    map[types.UID]*Pod
	keys    map[string]types.UID
}

func NewManager(o Options) *Manager {
	if o.CrashLoopBase <= 0 {
		o.CrashLoopBase = 10 * time.Second
	}
	if o.CrashLoopMax <= 0 {
		o.CrashLoopMax = 5 * time.Minute
	}
	m := &Manager{o: o, objs: apiObjects{o.Client}, pods: map[types.UID]*Pod{}, keys: map[string]types.UID{}}
	m.nsenter, _ = exec.LookPath("nsenter")
	return m
}

type apiObjects struct{ cs kubernetes.Interface }

func (a apiObjects) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return a.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

func (a apiObjects) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return a.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

// IsProcessPod reports whether any container of the pod has a --run-image image.
func (m *Manager) IsProcessPod(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if _, ok := Find(m.o.Images, c.Image); ok {
				return true
			}
		}
	}
	return false
}

// Known reports whether this manager runs (or ran) the pod with this key.
func (m *Manager) Known(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.keys[key]
	return ok
}

// Status starts the pod's containers the first time it is seen and returns the pod status
// they make now (old: the status in the API, for condition transition times).
func (m *Manager) Status(pod *corev1.Pod, hostIP string, now time.Time) (*corev1.PodStatus, error) {
	p, err := m.ensure(pod, hostIP)
	if err != nil {
		return nil, err
	}
	return p.status(&pod.Status, now), nil
}

func (m *Manager) ensure(pod *corev1.Pod, hostIP string) (*Pod, error) {
	key := pod.Namespace + "/" + pod.Name
	m.mu.Lock()
	if old, ok := m.keys[key]; ok && old != pod.UID {
		// A new pod of the same name (StatefulSet): the old one is gone.
		m.mu.Unlock()
		m.Remove(key)
		m.mu.Lock()
	}
	if p, ok := m.pods[pod.UID]; ok {
		m.mu.Unlock()
		return p, nil
	}
	defer m.mu.Unlock()
	ip, err := m.o.IPs.Allocate()
	if err != nil {
		return nil, err
	}
	p := newPod(m, pod.DeepCopy(), key, ip, hostIP)
	m.pods[pod.UID] = p
	m.keys[key] = pod.UID
	go p.run()
	log.Printf("process pod %s: started, IP %s, dir %s", key, ip, p.dir)
	return p, nil
}

// Terminate stops the pod's containers as the kubelet does on deletion (SIGTERM, the grace
// period, SIGKILL) and reports whether they are all gone. Call it again until true.
func (m *Manager) Terminate(pod *corev1.Pod) bool {
	m.mu.Lock()
	p, ok := m.pods[pod.UID]
	m.mu.Unlock()
	if !ok {
		return true
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		grace = *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	p.stop(time.Duration(grace) * time.Second)
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Remove kills what is left of the pod with this key at once and forgets it.
func (m *Manager) Remove(key string) {
	m.mu.Lock()
	uid, ok := m.keys[key]
	p := m.pods[uid]
	delete(m.keys, key)
	delete(m.pods, uid)
	m.mu.Unlock()
	if !ok || p == nil {
		return
	}
	p.stop(0)
	<-p.done
	m.o.IPs.Release(p.ip)
	_ = os.RemoveAll(filepath.Join(p.dir, "volumes"))
	log.Printf("process pod %s: removed (logs kept in %s)", key, p.dir)
}

// Shutdown stops every process pod (SIGTERM, then SIGKILL after grace).
func (m *Manager) Shutdown(grace time.Duration) {
	m.mu.Lock()
	var ps []*Pod
	for _, p := range m.pods {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	for _, p := range ps {
		p.stop(grace)
	}
	for _, p := range ps {
		<-p.done
	}
}

// Pod is one process pod.
type Pod struct {
	m      *Manager
	pod    *corev1.Pod // as first seen: the spec a kubelet runs
	key    string
	ip     string
	hostIP string
	dir    string
	start  time.Time
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	init     []*container
	ctrs     []*container
	initDone bool
	stopping bool
	killAt   time.Time
}

type container struct {
	spec     corev1.Container
	img      *RunImage // nil: no --run-image; simulated (running and ready, or completed)
	sidecar  bool
	state    corev1.ContainerState
	last     corev1.ContainerState
	restarts int32
	ready    bool
	started  bool
	pid      int
	backoff  time.Duration
}

func newPod(m *Manager, pod *corev1.Pod, key, ip, hostIP string) *Pod {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pod{m: m, pod: pod, key: key, ip: ip, hostIP: hostIP, start: time.Now(), ctx: ctx, cancel: cancel,
		done: make(chan struct{}),
		dir:  filepath.Join(m.o.PodsDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))}
	mk := func(c corev1.Container, init bool) *container {
		ct := &container{spec: c}
		if ri, ok := Find(m.o.Images, c.Image); ok {
			ct.img = &ri
		}
		ct.sidecar = init && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		reason := "ContainerCreating"
		if init && len(pod.Spec.InitContainers) > 0 {
			reason = "PodInitializing"
		}
		if !init && len(pod.Spec.InitContainers) > 0 {
			reason = "PodInitializing"
		}
		ct.state.Waiting = &corev1.ContainerStateWaiting{Reason: reason}
		return ct
	}
	for _, c := range pod.Spec.InitContainers {
		p.init = append(p.init, mk(c, true))
	}
	for _, c := range pod.Spec.Containers {
		p.ctrs = append(p.ctrs, mk(c, false))
	}
	p.initDone = len(p.init) == 0
	return p
}

func (p *Pod) changed() { p.m.o.Notify(p.key) }

func (p *Pod) logf(format string, args ...any) {
	log.Printf("process pod %s: "+format, append([]any{p.key}, args...)...)
}

// sleep waits d or until the pod stops; false when it stopped.
func (p *Pod) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

func (p *Pod) envInput() EnvInput {
	return EnvInput{PodIP: p.ip, HostIP: p.hostIP, NodeAllocatable: p.m.o.NodeAllocatable,
		ServiceEnv: ServiceEnv(p.m.o.APIHost, p.m.o.APIPort)}
}

func (p *Pod) run() {
	defer close(p.done)
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		p.logf("%v", err)
	}
	// Volumes first, as the kubelet mounts them before any container starts; a missing
	// Secret or ConfigMap keeps the containers in ContainerCreating until it appears.
	var vols map[string]string
	for {
		var err error
		if vols, err = writeVolumes(p.ctx, p.m.o.Client, p.m.objs, p.pod, p.dir, p.envInput()); err == nil {
			break
		}
		p.mu.Lock()
		for _, c := range append(append([]*container(nil), p.init...), p.ctrs...) {
			c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: err.Error()}}
		}
		p.mu.Unlock()
		p.changed()
		if !p.sleep(2 * time.Second) {
			return
		}
	}
	var sidecars sync.WaitGroup
	sideCtx, stopSidecars := context.WithCancel(p.ctx)
	defer stopSidecars()
	for _, c := range p.init {
		if c.sidecar {
			sidecars.Go(func() { p.loop(sideCtx, c, vols, corev1.RestartPolicyAlways) })
			continue
		}
		policy := corev1.RestartPolicyOnFailure // a failed init container is retried...
		if p.pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			policy = corev1.RestartPolicyNever // ...unless the pod never restarts (then it fails)
		}
		if ok := p.loop(p.ctx, c, vols, policy); !ok {
			stopSidecars()
			sidecars.Wait()
			return
		}
	}
	p.mu.Lock()
	p.initDone = true
	for _, c := range p.ctrs {
		c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	}
	p.mu.Unlock()
	p.changed()
	var wg sync.WaitGroup
	for _, c := range p.ctrs {
		wg.Go(func() { p.loop(p.ctx, c, vols, p.pod.Spec.RestartPolicy) })
	}
	wg.Wait()
	stopSidecars()
	sidecars.Wait()
}

// loop runs a container until it is done for good under the restart policy (or the pod
// stops) and reports whether its last run succeeded.
func (p *Pod) loop(ctx context.Context, c *container, vols map[string]string, policy corev1.RestartPolicy) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		code, ran, configErr := p.runOnce(ctx, c, vols)
		if configErr != nil {
			p.mu.Lock()
			c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: configErr.Error()}}
			p.mu.Unlock()
			p.changed()
			// The kubelet retries on its next sync; a created Secret or a fixed spec wins.
			if !p.sleep(2 * time.Second) {
				return false
			}
			continue
		}
		if ctx.Err() != nil {
			return code == 0
		}
		restart := policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && code != 0)
		if !restart {
			return code == 0
		}
		// CrashLoopBackOff as the kubelet: the first restart is immediate, then the delay
		// starts at the base and doubles up to the cap; a long enough run resets it.
		p.mu.Lock()
		if ran >= 2*p.m.o.CrashLoopMax {
			c.backoff = 0
		}
		delay := c.backoff
		if c.backoff == 0 {
			c.backoff = p.m.o.CrashLoopBase
		} else {
			c.backoff = min(2*c.backoff, p.m.o.CrashLoopMax)
		}
		c.restarts++
		c.last = c.state
		if delay > 0 {
			// pkg/kubelet/kuberuntime/kuberuntime_manager.go: "back-off %s restarting failed container=%s pod=%s"
			c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", delay, c.spec.Name, PodDesc(p.pod))}}
		}
		p.mu.Unlock()
		p.changed()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false
			}
		}
	}
}

// runOnce starts the container, waits for it to exit and returns its exit code and run time;
// configErr when it could not be created (it did not run).
func (p *Pod) runOnce(ctx context.Context, c *container, vols map[string]string) (code int, ran time.Duration, configErr error) {
	if c.img == nil {
		return p.simulate(ctx, c), 0, nil
	}
	spec, err := p.execSpec(ctx, c, vols)
	if err != nil {
		return 0, 0, err
	}
	started := time.Now()
	cmd, err := p.startProcess(c, spec)
	if err != nil {
		now := metav1.NewTime(started.Truncate(time.Second))
		p.mu.Lock()
		c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError",
			Message: err.Error(), StartedAt: now, FinishedAt: now}}
		c.ready, c.started = false, false
		p.mu.Unlock()
		p.changed()
		return 128, 0, nil
	}
	p.mu.Lock()
	c.pid = cmd.Process.Pid
	c.ready, c.started = false, false
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started.Truncate(time.Second))}}
	stopping := p.stopping
	p.mu.Unlock()
	if stopping {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	p.changed()
	probeCtx, stopProbes := context.WithCancel(ctx)
	go p.probe(probeCtx, c, spec, cmd.Process.Pid)
	err = cmd.Wait()
	stopProbes()
	finished := time.Now()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		} else {
			code = ws.ExitStatus()
		}
	} else if err != nil {
		code = 128
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	message := p.terminationMessage(c, code)
	p.mu.Lock()
	c.pid = 0
	c.ready = false
	c.started = false
	c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason,
		Message: message, StartedAt: metav1.NewTime(started.Truncate(time.Second)), FinishedAt: metav1.NewTime(finished.Truncate(time.Second)),
		ContainerID: containerID(cmd.Process.Pid)}}
	p.mu.Unlock()
	p.logf("container %s exited with code %d after %s", c.spec.Name, code, finished.Sub(started).Round(time.Millisecond))
	p.changed()
	return code, finished.Sub(started), nil
}

// The kubelet's limits (pkg/kubelet/kuberuntime): the file is read up to 4096 bytes; the log
// fallback takes at most the last 80 lines and 2048 bytes.
const (
	maxTerminationMessageBytes    = 4096
	maxTerminationMessageLogLines = 80
	maxTerminationMessageLogBytes = 2048
)

func (p *Pod) terminationLogPath(c *container) string {
	return filepath.Join(p.dir, c.spec.Name+".termination-log")
}

// terminationMessage is what the kubelet reports as the terminated container's message: the
// file at terminationMessagePath, or with FallbackToLogsOnError and a failure, the log's tail.
func (p *Pod) terminationMessage(c *container, code int) string {
	if c.spec.TerminationMessagePath != "" {
		if b, err := os.ReadFile(p.terminationLogPath(c)); err == nil && len(b) > 0 {
			if len(b) > maxTerminationMessageBytes {
				b = b[:maxTerminationMessageBytes]
			}
			return string(b)
		}
	}
	if code == 0 || c.spec.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(p.dir, c.spec.Name+".log"))
	if err != nil {
		return ""
	}
	return logTail(b, maxTerminationMessageLogLines, maxTerminationMessageLogBytes)
}

// logTail is the last lines (at most maxLines of them, at most maxBytes) of a log.
func logTail(b []byte, maxLines, maxBytes int) string {
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	tail := strings.Join(lines, "")
	if len(tail) > maxBytes {
		tail = tail[len(tail)-maxBytes:]
	}
	return tail
}

func containerID(pid int) string { return "process://" + strconv.Itoa(pid) }

// simulate stands in for a container whose image has no --run-image: an init container
// completes at once, any other runs (Ready) until the pod stops.
func (p *Pod) simulate(ctx context.Context, c *container) int {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	isInit := false
	for _, ic := range p.init {
		if ic == c && !c.sidecar {
			isInit = true
		}
	}
	p.mu.Lock()
	if isInit {
		c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}
		p.mu.Unlock()
		return 0
	}
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	c.ready, c.started = true, true
	p.mu.Unlock()
	p.changed()
	<-ctx.Done()
	return 0
}

// execSpec resolves what the container runs: env, user, command, mounts.
func (p *Pod) execSpec(ctx context.Context, c *container, vols map[string]string) (*ExecSpec, error) {
	img := c.img.Config
	iu, _, name := ImageUser(img.User)
	// The kubelet checks runAsNonRoot before it builds the env (kuberuntime_container.go).
	if err := VerifyRunAsNonRoot(p.pod, &c.spec, iu, name); err != nil {
		return nil, err
	}
	env, err := ContainerEnv(ctx, p.m.objs, p.pod, &c.spec, p.envInput())
	if err != nil {
		return nil, err
	}
	uid, gid, groups, err := Credentials(p.pod, &c.spec, img)
	if err != nil {
		return nil, err
	}
	argv := Command(img, &c.spec, env)
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command specified")
	}
	procEnv := ProcessEnv(img, env, hostname(p.pod))
	exe, err := Executable(argv[0], img, c.img.Path, envValue(procEnv, "PATH"), lookPath)
	if err != nil {
		return nil, err
	}
	s := &ExecSpec{Path: exe, Argv: argv, Env: procEnv, Dir: c.spec.WorkingDir, Hostname: hostname(p.pod),
		UID: uid, GID: gid, Groups: groups}
	if s.Dir == "" {
		s.Dir = img.WorkingDir
	}
	ro := map[string]bool{}
	for _, v := range p.pod.Spec.Volumes {
		// The kubelet mounts these read-only whatever the volumeMount says.
		ro[v.Name] = v.Secret != nil || v.ConfigMap != nil || v.DownwardAPI != nil || v.Projected != nil
	}
	for _, vm := range c.spec.VolumeMounts {
		src, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.spec.Name)
		}
		if vm.SubPath != "" {
			src = filepath.Join(src, filepath.Clean("/"+vm.SubPath))
			if _, err := os.Stat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o777); err != nil {
					return nil, err
				}
			}
		}
		s.Mounts = append(s.Mounts, Mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly || ro[vm.Name]})
	}
	// The kubelet bind-mounts an empty file at terminationMessagePath (the API server defaults
	// it to /dev/termination-log) and reads it back when the container exits.
	if target := c.spec.TerminationMessagePath; target != "" {
		src := p.terminationLogPath(c)
		if err := os.WriteFile(src, nil, 0o666); err != nil {
			return nil, err
		}
		if err := os.Chmod(src, 0o666); err != nil { // whatever the umask: any container user writes it
			return nil, err
		}
		s.Mounts = append(s.Mounts, Mount{Source: src, Target: target})
	}
	// Longer paths after the ones that contain them, as runtimes mount.
	sort.SliceStable(s.Mounts, func(i, j int) bool { return len(s.Mounts[i].Target) < len(s.Mounts[j].Target) })
	return s, nil
}

func hostname(pod *corev1.Pod) string {
	h := pod.Name
	if pod.Spec.Hostname != "" {
		h = pod.Spec.Hostname
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

func envValue(env []string, k string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return ""
}

// lookPath finds a program on the container's PATH (in the host's file system), with the
// runtime's message when it is missing.
func lookPath(name, pathEnv string) (string, error) {
	isExec := func(f string) bool {
		st, err := os.Stat(f)
		return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
	}
	if strings.Contains(name, "/") {
		if isExec(name) {
			return name, nil
		}
		return "", fmt.Errorf("exec: %q: stat %s: no such file or directory", name, name)
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if f := filepath.Join(d, name); isExec(f) {
			return f, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// startProcess starts the pod-exec helper in new mount and UTS namespaces, its own process
// group (signals reach the whole container), dying with the fake kubelet, output appended
// to the container's log file.
func (p *Pod) startProcess(c *container, spec *ExecSpec) (*exec.Cmd, error) {
	logf, err := os.OpenFile(filepath.Join(p.dir, c.spec.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(p.m.o.Self, "pod-exec")
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, err
	}
	_, werr := w.Write(b)
	w.Close()
	if werr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, werr
	}
	return cmd, nil
}

// stop begins the pod's termination: SIGTERM to every container now, SIGKILL after grace.
func (p *Pod) stop(grace time.Duration) {
	p.mu.Lock()
	first := !p.stopping
	p.stopping = true
	killAt := time.Now().Add(grace)
	if !first && !killAt.Before(p.killAt) {
		p.mu.Unlock()
		return
	}
	p.killAt = killAt
	var pids []int
	for _, c := range append(append([]*container(nil), p.init...), p.ctrs...) {
		if c.pid > 0 {
			pids = append(pids, c.pid)
		}
	}
	p.mu.Unlock()
	p.cancel()
	for _, pid := range pids {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	if first {
		p.logf("stopping: SIGTERM, SIGKILL after %s", grace)
	}
	go func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		if !p.killAt.Equal(killAt) {
			p.mu.Unlock()
			return // a shorter grace period took over
		}
		for _, c := range append(append([]*container(nil), p.init...), p.ctrs...) {
			if c.pid > 0 {
				_ = syscall.Kill(-c.pid, syscall.SIGKILL)
			}
		}
		p.mu.Unlock()
	}()
}

// killContainer restarts a container that failed its liveness or startup probe: SIGTERM,
// SIGKILL after the probe's (or the pod's) termination grace period.
func (p *Pod) killContainer(c *container, pid int, grace time.Duration, why string) {
	p.logf("container %s %s, will be restarted", c.spec.Name, why)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	go func() {
		time.Sleep(grace)
		p.mu.Lock()
		same := c.pid == pid
		p.mu.Unlock()
		if same {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
}

// probe runs the container's startup, readiness and liveness probes for one run.
func (p *Pod) probe(ctx context.Context, c *container, spec *ExecSpec, pid int) {
	sp, rp, lp := c.spec.StartupProbe, c.spec.ReadinessProbe, c.spec.LivenessProbe
	start := time.Now()
	execIn := p.execIn(c, spec, pid)
	set := func(f func()) {
		p.mu.Lock()
		f()
		p.mu.Unlock()
		p.changed()
	}
	grace := func(pr *corev1.Probe) time.Duration {
		if pr.TerminationGracePeriodSeconds != nil {
			return time.Duration(*pr.TerminationGracePeriodSeconds) * time.Second
		}
		if g := p.pod.Spec.TerminationGracePeriodSeconds; g != nil {
			return time.Duration(*g) * time.Second
		}
		return 30 * time.Second
	}
	sleepUntil := func(t time.Time) bool {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if sp != nil {
		initial, period, _, failure := probeParams(sp)
		fails := 0
		next := start.Add(initial)
		for {
			if !sleepUntil(next) {
				return
			}
			next = next.Add(period)
			if ok, msg := probeOnce(ctx, sp, p.ip, &c.spec, execIn); ok {
				break
			} else if ctx.Err() == nil {
				if fails++; fails >= failure {
					p.killContainer(c, pid, grace(sp), "failed startup probe: "+msg)
					return
				}
			}
		}
	}
	set(func() {
		c.started = true
		if rp == nil {
			c.ready = true
		}
	})
	probeStart := time.Now()
	if sp == nil {
		probeStart = start
	}
	var wg sync.WaitGroup
	if rp != nil {
		wg.Go(func() {
			initial, period, success, failure := probeParams(rp)
			oks, fails := 0, 0
			next := probeStart.Add(initial)
			for {
				if !sleepUntil(next) {
					return
				}
				next = next.Add(period)
				ok, _ := probeOnce(ctx, rp, p.ip, &c.spec, execIn)
				if ctx.Err() != nil {
					return
				}
				if ok {
					oks, fails = oks+1, 0
				} else {
					oks, fails = 0, fails+1
				}
				p.mu.Lock()
				ready := c.ready
				p.mu.Unlock()
				if !ready && oks >= success {
					set(func() { c.ready = true })
				} else if ready && fails >= failure {
					set(func() { c.ready = false })
				}
			}
		})
	}
	if lp != nil {
		wg.Go(func() {
			initial, period, _, failure := probeParams(lp)
			fails := 0
			next := probeStart.Add(initial)
			for {
				if !sleepUntil(next) {
					return
				}
				next = next.Add(period)
				ok, msg := probeOnce(ctx, lp, p.ip, &c.spec, execIn)
				if ctx.Err() != nil {
					return
				}
				if ok {
					fails = 0
				} else if fails++; fails >= failure {
					p.killContainer(c, pid, grace(lp), "failed liveness probe: "+msg)
					return
				}
			}
		})
	}
	wg.Wait()
}

// execIn runs an exec probe's command in the container's namespaces as its user, with its
// env (nsenter from util-linux: a Go program cannot setns into a mount namespace).
func (p *Pod) execIn(c *container, spec *ExecSpec, pid int) func(context.Context, []string) error {
	if p.m.nsenter == "" {
		return nil
	}
	return func(ctx context.Context, argv []string) error {
		if len(argv) == 0 {
			return fmt.Errorf("empty exec probe command")
		}
		exe, err := Executable(argv[0], c.img.Config, c.img.Path, envValue(spec.Env, "PATH"), lookPath)
		if err != nil {
			return err
		}
		args := []string{"-t", strconv.Itoa(pid), "-m", "-u", "--wd=" + orRoot(spec.Dir),
			"-S", strconv.FormatUint(uint64(spec.UID), 10), "-G", strconv.FormatUint(uint64(spec.GID), 10), "--", exe}
		cmd := exec.CommandContext(ctx, p.m.nsenter, append(args, argv[1:]...)...)
		cmd.Env = spec.Env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("command %q exited: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
}

func orRoot(d string) string {
	if d == "" {
		return "/"
	}
	return d
}

// LogFile returns the log file of a container of a process pod this manager runs or ran
// (kept until the pod is removed), and a channel closed when the pod's containers are gone.
func (m *Manager) LogFile(ns, name, ctr string) (string, <-chan struct{}, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	uid, ok := m.keys[ns+"/"+name]
	if !ok {
		return "", nil, false
	}
	p := m.pods[uid]
	for _, c := range append(append([]*container(nil), p.init...), p.ctrs...) {
		if c.spec.Name == ctr {
			return filepath.Join(p.dir, ctr+".log"), p.done, true
		}
	}
	return "", nil, false
}
