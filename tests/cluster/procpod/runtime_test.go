package procpod

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/rollout-runner/rollout-runner/tests/cluster/imageconfig"
)

// The test binary doubles as the pod-exec helper and as a test server "image".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "pod-exec":
			os.Exit(ExecMain())
		case "serve-test":
			os.Exit(serveTest())
		}
	}
	os.Exit(m.Run())
}

// serveTest is a container: ready after READY_AFTER, reports what it sees on /info, prints
// and exits 0 on SIGTERM.
func serveTest() int {
	ready := time.Now()
	if d, err := time.ParseDuration(os.Getenv("READY_AFTER")); err == nil {
		ready = ready.Add(d)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("POD_IP"), "8080"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("listening on", l.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if time.Now().Before(ready) {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		token, _ := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/token")
		ns, _ := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		host, _ := os.Hostname()
		wd, _ := os.Getwd()
		werr := os.WriteFile("/var/run/secrets/kubernetes.io/serviceaccount/x", nil, 0o644)
		_ = json.NewEncoder(w).Encode(map[string]any{"uid": os.Getuid(), "gid": os.Getgid(), "host": host, "wd": wd,
			"token": string(token), "namespace": string(ns), "env": os.Environ(), "args": os.Args, "readOnly": werr != nil})
	})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { _ = http.Serve(l, mux) }()
	<-sig
	fmt.Println("got SIGTERM")
	return 0
}

type harness struct {
	m    *Manager
	mu   sync.Mutex
	pods map[string]*corev1.Pod
}

func newHarness(t *testing.T) *harness {
	if os.Geteuid() != 0 {
		t.Skip("process pods need root (mount namespaces, setuid)")
	}
	// A private directory (0700): a container user can still run the binary in it, as
	// pod-exec opens it before dropping privileges.
	dir, err := os.MkdirTemp("", "procpod-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, _ := os.Executable()
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "server")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "ns1"}, Data: map[string]string{"ca.crt": "CA"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ns1"}, Data: map[string][]byte{"user": []byte("admin")}},
	)
	cs.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(k8stesting.CreateAction)
		if !ok || a.GetSubresource() != "token" {
			return false, nil, nil
		}
		tr := ca.GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		ref := tr.Spec.BoundObjectRef
		tr.Status.Token = fmt.Sprintf("token-for-%s-bound-to-%s/%s", ca.(k8stesting.CreateActionImpl).Name, ref.Kind, ref.Name)
		return true, tr, nil
	})
	ips, err := NewIPAllocator("127.77.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{pods: map[string]*corev1.Pod{}}
	h.m = NewManager(Options{
		Images: []RunImage{
			{Name: "example.com/server", Path: bin, Config: imageconfig.Config{Entrypoint: []string{"/server"}, Cmd: []string{"serve-test"},
				User: "65532:65532", WorkingDir: "/", Env: []string{"PATH=/usr/bin:/bin", "FROM_IMAGE=yes"}}},
			{Name: "example.com/root-shell", Path: "/bin/sh", Config: imageconfig.Config{Entrypoint: []string{"/bin/sh", "-c"}}},
		},
		PodsDir: filepath.Join(dir, "pods"), Self: bin, APIHost: "127.0.0.1", APIPort: "6443", IPs: ips,
		CrashLoopBase: 300 * time.Millisecond, Client: cs, Notify: func(string) {},
	})
	t.Cleanup(func() { h.m.Shutdown(time.Second) })
	return h
}

func testPodSpec(name, image string, mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns1", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: "fake-node-0", RestartPolicy: corev1.RestartPolicyAlways, ServiceAccountName: "robot",
			Containers: []corev1.Container{{Name: "main", Image: image}}},
	}
	if mod != nil {
		mod(p)
	}
	return p
}

// waitStatus polls the pod's status until cond holds.
func (h *harness) waitStatus(t *testing.T, pod *corev1.Pod, what string, cond func(*corev1.PodStatus) bool) *corev1.PodStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := h.m.Status(pod, "10.255.0.1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pod.Status = *s
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s, "", "  ")
			t.Fatalf("%s: not after 15s; status:\n%s", what, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ready(s *corev1.PodStatus) bool {
	c := findCondition(s.Conditions, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func TestProcessPodLifecycle(t *testing.T) {
	h := newHarness(t)
	pod := testPodSpec("web", "example.com/server:v1", func(p *corev1.Pod) {
		tokenExp := int64(3607)
		p.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &tokenExp}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
					Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}}}}}
		c := &p.Spec.Containers[0]
		c.VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
		c.Env = []corev1.EnvVar{
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "READY_AFTER", Value: "1500ms"},
			{Name: "DB_USER", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "user"}}},
		}
		c.Args = []string{"serve-test", "--ip=$(POD_IP)"}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
			PeriodSeconds: 1, FailureThreshold: 1}
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
			InitialDelaySeconds: 1, PeriodSeconds: 1}
	})
	start := time.Now()
	s := h.waitStatus(t, pod, "running", func(s *corev1.PodStatus) bool {
		return len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].State.Running != nil
	})
	if ready(s) || s.Phase != corev1.PodRunning || !strings.HasPrefix(s.PodIP, "127.77.") {
		t.Fatalf("want Running, not Ready yet, a pod IP: %+v", s)
	}
	s = h.waitStatus(t, pod, "Ready", ready)
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("Ready after %s, before the readiness probe could pass", d)
	}

	resp, err := http.Get("http://" + s.PodIP + ":8080/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		UID, GID        int
		Host, WD, Token string
		Namespace       string
		Env, Args       []string
		ReadOnly        bool
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	env := strings.Join(info.Env, "\n") + "\n"
	for _, want := range []string{"POD_IP=" + s.PodIP + "\n", "DB_USER=admin\n", "FROM_IMAGE=yes\n", "HOSTNAME=web\n",
		"KUBERNETES_SERVICE_HOST=127.0.0.1\n", "KUBERNETES_SERVICE_PORT=6443\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	if info.UID != 65532 || info.GID != 65532 || info.Host != "web" || info.WD != "/" || !info.ReadOnly ||
		info.Token != "token-for-robot-bound-to-Pod/web" || info.Namespace != "ns1" ||
		strings.Join(info.Args, " ") != "/server serve-test --ip="+s.PodIP {
		t.Errorf("the container saw %+v", info)
	}
	// The service account files exist only in the pod's mount namespace.
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/token"); err == nil && strings.Contains(string(b), "token-for-robot") {
		t.Error("the pod's token is visible on the host")
	}

	// Deletion: SIGTERM, the process exits within the grace period.
	grace := int64(10)
	pod.DeletionGracePeriodSeconds = &grace
	deadline := time.Now().Add(5 * time.Second)
	for !h.m.Terminate(pod) {
		if time.Now().After(deadline) {
			t.Fatal("the pod did not stop after SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs, err := os.ReadFile(filepath.Join(h.m.o.PodsDir, "ns1_web_uid-web", "main.log"))
	if err != nil || !strings.Contains(string(logs), "listening on "+s.PodIP+":8080") || !strings.Contains(string(logs), "got SIGTERM") {
		t.Errorf("container log: %q %v", logs, err)
	}
	h.m.Remove("ns1/web")
}

func TestRunAsNonRootOverRootImage(t *testing.T) {
	h := newHarness(t)
	yes := true
	pod := testPodSpec("rooty", "example.com/root-shell", func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: &yes}
		p.Spec.Containers[0].Args = []string{"sleep 60"}
	})
	s := h.waitStatus(t, pod, "CreateContainerConfigError", func(s *corev1.PodStatus) bool {
		w := s.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError"
	})
	want := `container has runAsNonRoot and image will run as root (pod: "rooty_ns1(uid-rooty)", container: main)`
	if got := s.ContainerStatuses[0].State.Waiting.Message; got != want || s.Phase != corev1.PodPending {
		t.Fatalf("got %q (phase %s), want %q", got, s.Phase, want)
	}
}

func TestRestartPolicies(t *testing.T) {
	h := newHarness(t)
	crash := testPodSpec("crash", "example.com/root-shell", func(p *corev1.Pod) {
		p.Spec.Containers[0].Args = []string{"echo run; exit 3"}
	})
	s := h.waitStatus(t, crash, "CrashLoopBackOff", func(s *corev1.PodStatus) bool {
		w := s.ContainerStatuses[0].State.Waiting
		// The kubelet restarts at once after the first exit, then backs off.
		return w != nil && w.Reason == "CrashLoopBackOff" && s.ContainerStatuses[0].RestartCount == 2
	})
	cs := s.ContainerStatuses[0]
	if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 3 ||
		cs.LastTerminationState.Terminated.Reason != "Error" || s.Phase != corev1.PodRunning ||
		cs.State.Waiting.Message != "back-off 300ms restarting failed container=main pod=crash_ns1(uid-crash)" {
		t.Fatalf("crash loop status: %+v", s)
	}
	h.waitStatus(t, crash, "second back-off", func(s *corev1.PodStatus) bool {
		w := s.ContainerStatuses[0].State.Waiting
		return w != nil && w.Message == "back-off 600ms restarting failed container=main pod=crash_ns1(uid-crash)" &&
			s.ContainerStatuses[0].RestartCount == 3
	})
	once := testPodSpec("once", "example.com/root-shell", func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.Containers[0].Args = []string{"exit 3"}
	})
	s = h.waitStatus(t, once, "Failed", func(s *corev1.PodStatus) bool { return s.Phase == corev1.PodFailed })
	if t3 := s.ContainerStatuses[0].State.Terminated; t3 == nil || t3.ExitCode != 3 || s.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("Never: %+v", s)
	}
	ok := testPodSpec("ok", "example.com/root-shell", func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		p.Spec.Containers[0].Args = []string{"exit 0"}
	})
	h.waitStatus(t, ok, "Succeeded", func(s *corev1.PodStatus) bool { return s.Phase == corev1.PodSucceeded })
}

func TestLivenessAndExecProbes(t *testing.T) {
	h := newHarness(t)
	if h.m.nsenter == "" {
		t.Skip("nsenter is missing")
	}
	// Liveness fails (never healthy): SIGTERM, the server exits 0, Always restarts it.
	sick := testPodSpec("sick", "example.com/server", func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Env = []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "READY_AFTER", Value: "1h"}}
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
			PeriodSeconds: 1, FailureThreshold: 2}
	})
	s := h.waitStatus(t, sick, "restarted after failed liveness probes", func(s *corev1.PodStatus) bool {
		return s.ContainerStatuses[0].RestartCount >= 1
	})
	if l := s.ContainerStatuses[0].LastTerminationState.Terminated; l == nil || l.ExitCode != 0 || l.Reason != "Completed" {
		t.Fatalf("last state after the liveness kill: %+v", s.ContainerStatuses[0])
	}
	logs, _ := os.ReadFile(filepath.Join(h.m.o.PodsDir, "ns1_sick_uid-sick", "main.log"))
	if !strings.Contains(string(logs), "got SIGTERM") {
		t.Fatalf("log: %s", logs)
	}

	// An exec readiness probe runs in the container's mount namespace: it sees the file the
	// container writes to its emptyDir, which the host does not.
	t.Cleanup(func() { _ = os.Remove("/procpod-test-state") }) // the (empty) mount point on the host
	execp := testPodSpec("execp", "example.com/root-shell", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		c := &p.Spec.Containers[0]
		c.VolumeMounts = []corev1.VolumeMount{{Name: "state", MountPath: "/procpod-test-state"}}
		c.Args = []string{"sleep 1; touch /procpod-test-state/ok; exec sleep 60"}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/procpod-test-state/ok"}}},
			PeriodSeconds: 1}
	})
	start := time.Now()
	h.waitStatus(t, execp, "Ready by the exec probe", ready)
	if time.Since(start) < time.Second {
		t.Fatal("Ready before the file existed")
	}
	if _, err := os.Stat("/procpod-test-state/ok"); err == nil {
		t.Fatal("the container's emptyDir content is visible on the host")
	}
}
