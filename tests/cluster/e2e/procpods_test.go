// End-to-end test of process pods against a running harness. Run it with
// tests/cluster/e2e-procpods, which builds everything and starts the harness with
//
//	--run-image example.com/testserver=BIN:CONFIG        (USER 65532:65532)
//	--run-image example.com/testserver-root=BIN:CONFIG   (no USER: root)
//
// and sets K8S_HARNESS_PROCPODS_DIR to the harness directory. Skipped without it.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func setup(t *testing.T) (kubernetes.Interface, string, string) {
	dir := os.Getenv("K8S_HARNESS_PROCPODS_DIR")
	if dir == "" {
		t.Skip("K8S_HARNESS_PROCPODS_DIR is not set (run tests/cluster/e2e-procpods)")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(rc)
	ctx := context.Background()
	ns := fmt.Sprintf("procpods-%d", time.Now().UnixNano()%1e6)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	waitFor(t, "default ServiceAccount", 30*time.Second, func() (bool, string) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	return cs, ns, dir
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; last seen: %s", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func podReady(p *corev1.Pod) (bool, time.Time) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue, c.LastTransitionTime.Time
		}
	}
	return false, time.Time{}
}

func TestDeploymentOfProcessPods(t *testing.T) {
	cs, ns, dir := setup(t)
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	one := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "main", Image: "example.com/testserver:v1",
					Env: []corev1.EnvVar{
						{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
						{Name: "READY_AFTER", Value: "4s"},
					},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1, FailureThreshold: 1},
					SecurityContext: &corev1.SecurityContext{RunAsNonRoot: new(true)},
				}}}}},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var pod corev1.Pod
	waitFor(t, "a running pod", 60*time.Second, func() (bool, string) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(list.Items) != 1 {
			return false, fmt.Sprint(err, list)
		}
		pod = list.Items[0]
		cst := pod.Status.ContainerStatuses
		return len(cst) == 1 && cst[0].State.Running != nil, fmt.Sprintf("%+v", pod.Status)
	})
	started := pod.Status.ContainerStatuses[0].State.Running.StartedAt.Time
	if r, _ := podReady(&pod); r {
		t.Fatal("Ready before the readiness probe passed")
	}
	waitFor(t, "pod Ready", 30*time.Second, func() (bool, string) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = *p
		r, _ := podReady(p)
		return r, fmt.Sprintf("%+v", p.Status)
	})
	_, readyAt := podReady(&pod)
	// Times are whole seconds: READY_AFTER 4s means Ready no less than 3s after the start.
	if readyAt.Sub(started) < 3*time.Second {
		t.Fatalf("Ready at %s, started at %s: before the probe could pass", readyAt, started)
	}
	t.Logf("pod %s: IP %s, started %s, Ready %s", pod.Name, pod.Status.PodIP, started.Format(time.TimeOnly), readyAt.Format(time.TimeOnly))

	get := func(url string) (int, []byte) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := get("http://" + pod.Status.PodIP + ":8080/info")
	var info struct {
		UID            int
		Hostname       string
		Env            []string
		ServiceAccount map[string]string
	}
	if err := json.Unmarshal(body, &info); err != nil || code != 200 {
		t.Fatalf("/info: %d %s %v", code, body, err)
	}
	if info.UID != 65532 || info.Hostname != pod.Name || info.ServiceAccount["namespace"] != ns ||
		!strings.HasPrefix(info.ServiceAccount["ca.crt"], "-----BEGIN CERTIFICATE-----") || strings.Count(info.ServiceAccount["token"], ".") != 2 {
		t.Fatalf("the container saw: %s", body)
	}
	code, body = get("http://" + pod.Status.PodIP + ":8080/whoami")
	if code != 200 || !strings.Contains(string(body), `"username":"system:serviceaccount:`+ns+`:default"`) ||
		!strings.Contains(string(body), pod.Name) {
		t.Fatalf("in-cluster SelfSubjectReview: %d %s", code, body)
	}

	waitFor(t, "a ready EndpointSlice address", 30*time.Second, func() (bool, string) {
		list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, err.Error()
		}
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if len(e.Addresses) > 0 && e.Addresses[0] == pod.Status.PodIP && e.Conditions.Ready != nil && *e.Conditions.Ready {
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("%+v", list.Items)
	})
	if code, body := get("http://" + pod.Status.PodIP + ":8080/healthz"); code != 200 {
		t.Fatalf("the EndpointSlice address does not answer: %d %s", code, body)
	}

	logFile := filepath.Join(dir, "pods", fmt.Sprintf("%s_%s_%s", ns, pod.Name, pod.UID), "main.log")
	b, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(b), "listening on "+pod.Status.PodIP+":8080 as uid 65532") ||
		!strings.Contains(string(b), "env: POD_IP="+pod.Status.PodIP) {
		t.Fatalf("log %s: %q %v", logFile, b, err)
	}

	// pods/log through the apiserver, as `kubectl logs --tail=1` does.
	tail := int64(1)
	logs, err := cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main", TailLines: &tail}).DoRaw(ctx)
	if err != nil || string(logs) != "listening on "+pod.Status.PodIP+":8080 as uid 65532\n" {
		t.Fatalf("pods/log: %q %v", logs, err)
	}

	// Scale to zero: the kubelet sends SIGTERM and the pod goes away once the process exits.
	zero := int32(0)
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Replicas = &zero
	if _, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod gone", 20*time.Second, func() (bool, string) {
		_, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err != nil, "still there"
	})
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), "got SIGTERM, exiting") {
		t.Fatalf("no SIGTERM in the log: %s", b)
	}
}

func TestRunAsNonRootOverRootImage(t *testing.T) {
	cs, ns, _ := setup(t)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rooty", Namespace: ns}, Spec: corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: new(true)},
		Containers:      []corev1.Container{{Name: "app", Image: "example.com/testserver-root"}}}}
	created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`container has runAsNonRoot and image will run as root (pod: "rooty_%s(%s)", container: app)`, ns, created.UID)
	waitFor(t, "CreateContainerConfigError", 30*time.Second, func() (bool, string) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "rooty", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError" && w.Message == want && p.Status.Phase == corev1.PodPending,
			fmt.Sprintf("%+v", p.Status)
	})
}
