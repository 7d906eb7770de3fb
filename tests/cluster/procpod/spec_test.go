package procpod

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/rollout-runner/rollout-runner/tests/cluster/imageconfig"
)

func TestImageMatching(t *testing.T) {
	mk := func(name string) RunImage {
		var ri RunImage
		ri.Name, ri.Tag, ri.Digest = splitImage(name)
		return ri
	}
	cases := []struct {
		name, image string
		want        bool
	}{
		{"ghcr.io/rollout-runner/rollout-runner", "ghcr.io/rollout-runner/rollout-runner", true},
		{"ghcr.io/rollout-runner/rollout-runner", "ghcr.io/rollout-runner/rollout-runner:v0", true},
		{"ghcr.io/rollout-runner/rollout-runner", "ghcr.io/rollout-runner/rollout-runner:v0@sha256:abc", true},
		{"ghcr.io/rollout-runner/rollout-runner", "ghcr.io/rollout-runner/rollout-runner@sha256:abc", true},
		{"ghcr.io/rollout-runner/rollout-runner", "ghcr.io/rollout-runner/rollout-runner-other:v0", false},
		{"ghcr.io/rollout-runner/rollout-runner", "docker.io/rollout-runner/rollout-runner:v0", false},
		{"ghcr.io/rollout-runner/rollout-runner:v1", "ghcr.io/rollout-runner/rollout-runner:v0", false},
		{"ghcr.io/rollout-runner/rollout-runner:v1", "ghcr.io/rollout-runner/rollout-runner:v1", true},
		{"nginx", "docker.io/library/nginx:1.27", true},
		{"docker.io/library/nginx", "nginx", true},
		{"nginx", "index.docker.io/library/nginx", true},
		{"example/app", "docker.io/example/app:1", true},
		{"localhost:5000/app", "localhost:5000/app:dev", true},
		{"localhost:5000/app", "localhost/app:dev", false},
	}
	for _, c := range cases {
		if got := mk(c.name).Matches(c.image); got != c.want {
			t.Errorf("%s matches %s: got %v, want %v", c.name, c.image, got, c.want)
		}
	}
}

func TestParseRunImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ri, err := ParseRunImage("example.com/app=" + bin)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ri.Config, imageconfig.Config{Entrypoint: []string{bin}}) || ri.ConfigFile != "" {
		t.Fatalf("without a config file: %+v", ri)
	}
	if err := os.WriteFile(bin+".image.json", []byte(`{"Entrypoint":["/usr/bin/app"],"User":"10:10"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if ri, err = ParseRunImage("example.com/app=" + bin); err != nil || ri.Config.User != "10:10" || ri.ConfigFile != bin+".image.json" {
		t.Fatalf("PATH.image.json: %+v %v", ri, err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte(`{"Cmd":["/app"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if ri, err = ParseRunImage("example.com/app:v1=" + bin + ":" + other); err != nil || ri.Config.MainBinary() != "/app" || ri.Tag != "v1" {
		t.Fatalf("PATH:CONFIG: %+v %v", ri, err)
	}
	for _, bad := range []string{"example.com/app", "=x", "example.com/app=" + dir, "example.com/app=" + bin + ".missing"} {
		if _, err := ParseRunImage(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestCommand(t *testing.T) {
	img := imageconfig.Config{Entrypoint: []string{"/usr/local/bin/app", "--image-flag"}, Cmd: []string{"serve"}}
	env := map[string]string{"PORT": "8080", "EMPTY": ""}
	cases := []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/usr/local/bin/app", "--image-flag", "serve"}},
		// args replace CMD, keep ENTRYPOINT
		{nil, []string{"check", "--port=$(PORT)"}, []string{"/usr/local/bin/app", "--image-flag", "check", "--port=8080"}},
		// command replaces ENTRYPOINT and drops CMD
		{[]string{"/bin/sh", "-c", "echo $(PORT) $$(PORT) $(MISSING) [$(EMPTY)]"}, nil,
			[]string{"/bin/sh", "-c", "echo 8080 $(PORT) $(MISSING) []"}},
		{[]string{"app"}, []string{"x"}, []string{"app", "x"}},
	}
	for _, c := range cases {
		got := Command(img, &corev1.Container{Command: c.command, Args: c.args}, env)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("command %q args %q: got %q, want %q", c.command, c.args, got, c.want)
		}
	}
	look := func(name, path string) (string, error) { return "/host/" + name + " in " + path, nil }
	for argv0, want := range map[string]string{
		"/usr/local/bin/app": "/bin/app-build",
		"app":                "/bin/app-build",
		"/bin/app":           "/host//bin/app in /x",
		"sh":                 "/host/sh in /x",
	} {
		if got, _ := Executable(argv0, img, "/bin/app-build", "/x", look); got != want {
			t.Errorf("Executable(%q) = %q, want %q", argv0, got, want)
		}
	}
	if _, err := lookPath("no-such-program-here", "/bin:/usr/bin"); err == nil ||
		err.Error() != `exec: "no-such-program-here": executable file not found in $PATH` {
		t.Errorf("lookPath error: %v", err)
	}
}

type fakeObjects struct {
	secrets map[string]*corev1.Secret
	cms     map[string]*corev1.ConfigMap
}

func (f fakeObjects) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (f fakeObjects) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if c, ok := f.cms[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns1", UID: "u-1",
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"}},
		Spec: corev1.PodSpec{NodeName: "fake-node-0", ServiceAccountName: "robot",
			Containers: []corev1.Container{{Name: "main", Image: "x",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
	}
}

func TestContainerEnv(t *testing.T) {
	yes := true
	objs := fakeObjects{
		secrets: map[string]*corev1.Secret{"creds": {Data: map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cret")}}},
		cms:     map[string]*corev1.ConfigMap{"conf": {Data: map[string]string{"LEVEL": "debug", "MODE": "fast"}}},
	}
	pod := testPod()
	c := &pod.Spec.Containers[0]
	c.EnvFrom = []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}},
		{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: &yes}},
	}
	field := func(p string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: p}}
	}
	c.Env = []corev1.EnvVar{
		{Name: "MODE", Value: "slow"}, // env wins over envFrom
		{Name: "URL", Value: "http://$(POD_IP):8080/$(LEVEL)/$(KUBERNETES_SERVICE_HOST)/$(LATER)"},
		{Name: "POD_NAME", ValueFrom: field("metadata.name")},
		{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
		{Name: "POD_UID", ValueFrom: field("metadata.uid")},
		{Name: "APP", ValueFrom: field("metadata.labels['app']")},
		{Name: "ANN", ValueFrom: field("metadata.annotations")},
		{Name: "NODE", ValueFrom: field("spec.nodeName")},
		{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
		{Name: "POD_IP", ValueFrom: field("status.podIP")},
		{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
		{Name: "URL2", Value: "$(POD_IP)"},
		{Name: "CPU_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
		{Name: "MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "PASS", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "pass"}}},
		{Name: "OPT1", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "none", Optional: &yes}}},
		{Name: "OPT2", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "k", Optional: &yes}}},
		{Name: "LVL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}, Key: "LEVEL"}}},
		{Name: "LATER", Value: "late"},
	}
	in := EnvInput{PodIP: "10.250.0.7", HostIP: "10.255.0.1", NodeAllocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")},
		ServiceEnv: ServiceEnv("127.0.0.1", "6443")}
	env, err := ContainerEnv(context.Background(), objs, pod, c, in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"LEVEL": "debug", "MODE": "slow", "DB_user": "admin", "DB_pass": "s3cret",
		// $(POD_IP) is declared later: left as is; service variables expand.
		"URL":      "http://$(POD_IP):8080/debug/127.0.0.1/$(LATER)",
		"POD_NAME": "web-1", "POD_NAMESPACE": "ns1", "POD_UID": "u-1", "APP": "web", "ANN": `a="b"`,
		"NODE": "fake-node-0", "SA": "robot", "POD_IP": "10.250.0.7", "HOST_IP": "10.255.0.1", "URL2": "10.250.0.7",
		"CPU_LIMIT": "64", "MEM_MI": "64", "PASS": "s3cret", "LVL": "debug", "LATER": "late",
		"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"OPT1", "OPT2"} {
		if _, ok := env[k]; ok {
			t.Errorf("optional %s is set", k)
		}
	}
	if env["KUBERNETES_PORT"] != "tcp://127.0.0.1:6443" || env["KUBERNETES_PORT_6443_TCP_ADDR"] != "127.0.0.1" {
		t.Errorf("service env: %v", env)
	}

	// The kubelet's errors, word for word.
	for _, tc := range []struct {
		ev   corev1.EnvVar
		want string
	}{
		{corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "none"}}},
			"couldn't find key none in Secret ns1/creds"},
		{corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}, Key: "none"}}},
			"couldn't find key none in ConfigMap ns1/conf"},
		{corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}}},
			`secrets "gone" not found`},
	} {
		c.EnvFrom, c.Env = nil, []corev1.EnvVar{tc.ev}
		if _, err := ContainerEnv(context.Background(), objs, pod, c, in); err == nil || err.Error() != tc.want {
			t.Errorf("got error %v, want %q", err, tc.want)
		}
	}

	penv := ProcessEnv(imageconfig.Config{Env: []string{"PATH=/usr/local/bin:/bin", "SSL_CERT_FILE=/x", "MODE=image"}},
		map[string]string{"MODE": "pod"}, "web-1")
	wantEnv := []string{"HOME=/", "HOSTNAME=web-1", "MODE=pod", "PATH=/usr/local/bin:/bin", "SSL_CERT_FILE=/x"}
	if !reflect.DeepEqual(penv, wantEnv) {
		t.Errorf("process env %q, want %q", penv, wantEnv)
	}
}

func TestRunAsNonRoot(t *testing.T) {
	yes, no := true, false
	i := func(v int64) *int64 { return &v }
	cases := []struct {
		name      string
		imageUser string
		pod, ctr  *corev1.SecurityContext
		podNR     *bool
		want      string
	}{
		{name: "no policy, root image", imageUser: ""},
		{name: "root image", imageUser: "", ctr: &corev1.SecurityContext{RunAsNonRoot: &yes},
			want: `container has runAsNonRoot and image will run as root (pod: "web-1_ns1(u-1)", container: main)`},
		{name: "uid 0 image", imageUser: "0:0", podNR: &yes,
			want: `container has runAsNonRoot and image will run as root (pod: "web-1_ns1(u-1)", container: main)`},
		{name: "container overrides pod", imageUser: "0", podNR: &yes, ctr: &corev1.SecurityContext{RunAsNonRoot: &no}},
		{name: "non-root image", imageUser: "65532:65532", ctr: &corev1.SecurityContext{RunAsNonRoot: &yes}},
		{name: "named user", imageUser: "app", ctr: &corev1.SecurityContext{RunAsNonRoot: &yes},
			want: `container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: "web-1_ns1(u-1)", container: main)`},
		{name: "runAsUser over root image", imageUser: "", ctr: &corev1.SecurityContext{RunAsNonRoot: &yes, RunAsUser: i(1000)}},
		{name: "runAsUser 0", imageUser: "65532", ctr: &corev1.SecurityContext{RunAsNonRoot: &yes, RunAsUser: i(0)},
			want: `container's runAsUser breaks non-root policy (pod: "web-1_ns1(u-1)", container: main)`},
	}
	for _, c := range cases {
		pod := testPod()
		if c.podNR != nil {
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: c.podNR}
		}
		pod.Spec.Containers[0].SecurityContext = c.ctr
		uid, _, name := ImageUser(c.imageUser)
		err := VerifyRunAsNonRoot(pod, &pod.Spec.Containers[0], uid, name)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestCredentials(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	pod := testPod()
	c := &pod.Spec.Containers[0]
	check := func(img string, wantUID, wantGID uint32, wantGroups []uint32) {
		t.Helper()
		uid, gid, groups, err := Credentials(pod, c, imageconfig.Config{User: img})
		if err != nil || uid != wantUID || gid != wantGID || !reflect.DeepEqual(groups, wantGroups) {
			t.Errorf("image user %q: got %d:%d %v %v, want %d:%d %v", img, uid, gid, groups, err, wantUID, wantGID, wantGroups)
		}
	}
	check("", 0, 0, []uint32{0})
	check("65532:65532", 65532, 65532, []uint32{65532})
	check("1000", 1000, 0, []uint32{0})
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: i(2000)}
	check("65532:65532", 2000, 0, []uint32{0}) // runAsUser without runAsGroup: gid 0 (no /etc/passwd)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsGroup: i(3000), FSGroup: i(4000), SupplementalGroups: []int64{5000}}
	check("65532:65532", 2000, 3000, []uint32{3000, 5000, 4000})
	c.SecurityContext = nil
	pod.Spec.SecurityContext = nil
	if _, _, _, err := Credentials(pod, c, imageconfig.Config{User: "app"}); err == nil {
		t.Error("a named user cannot be resolved without the image's /etc/passwd")
	}
}

func TestIPAllocator(t *testing.T) {
	a, err := NewIPAllocator("10.250.7.0/29") // 6 usable: .1-.6
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 6 {
		ip, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[ip] || !strings.HasPrefix(ip, "10.250.7.") || ip == "10.250.7.0" || ip == "10.250.7.7" {
			t.Fatalf("bad or duplicate address %s (%v)", ip, seen)
		}
		seen[ip] = true
	}
	if _, err := a.Allocate(); err == nil {
		t.Fatal("want an error when the range is exhausted")
	}
	a.Release("10.250.7.3")
	if ip, err := a.Allocate(); err != nil || ip != "10.250.7.3" {
		t.Fatalf("after release: %s %v", ip, err)
	}
	if a.Reserve("10.250.7.3") || a.Reserve("10.1.1.1") {
		t.Fatal("Reserve of a used or foreign address must fail")
	}
	if _, err := NewIPAllocator("fd00::/64"); err == nil {
		t.Fatal("IPv6 is not supported")
	}
}
