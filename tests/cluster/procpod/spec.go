package procpod

import (
	"context"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kubernetes/pkg/api/v1/resource"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

	"github.com/rollout-runner/rollout-runner/tests/cluster/imageconfig"
)

// PodDesc is the kubelet's pod description in messages (pkg/kubelet/util/format.PodDesc:
// underscore-separated, as pod names cannot contain one).
func PodDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// Security is the effective user of a container: the container's securityContext over the
// pod's (pkg/securitycontext.DetermineEffectiveSecurityContext for these fields).
type Security struct {
	RunAsUser, RunAsGroup *int64
	RunAsNonRoot          *bool
	SupplementalGroups    []int64
}

func EffectiveSecurity(pod *corev1.Pod, c *corev1.Container) Security {
	var s Security
	if p := pod.Spec.SecurityContext; p != nil {
		s.RunAsUser, s.RunAsGroup, s.RunAsNonRoot = p.RunAsUser, p.RunAsGroup, p.RunAsNonRoot
		s.SupplementalGroups = p.SupplementalGroups
		if p.FSGroup != nil {
			s.SupplementalGroups = append(append([]int64(nil), s.SupplementalGroups...), *p.FSGroup)
		}
	}
	if cs := c.SecurityContext; cs != nil {
		if cs.RunAsUser != nil {
			s.RunAsUser = cs.RunAsUser
		}
		if cs.RunAsGroup != nil {
			s.RunAsGroup = cs.RunAsGroup
		}
		if cs.RunAsNonRoot != nil {
			s.RunAsNonRoot = cs.RunAsNonRoot
		}
	}
	return s
}

// ImageUser splits an image's USER ("uid", "uid:gid", "name", "name:group") as the container
// runtime does for the kubelet's ImageStatus: a numeric user is a uid, anything else a
// username; no USER is root.
func ImageUser(user string) (uid *int64, gid *int64, username string) {
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" {
		return new(int64), nil, ""
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil {
		uid = &n
	} else {
		username = u
	}
	if hasGroup {
		if n, err := strconv.ParseInt(g, 10, 64); err == nil {
			gid = &n
		}
	}
	return uid, gid, username
}

// VerifyRunAsNonRoot is the kubelet's check, with its exact messages, from
// k8s.io/kubernetes@v1.36.4 pkg/kubelet/kuberuntime/security_context_others.go
// (verifyRunAsNonRoot). uid/username come from ImageUser; a failure leaves the container
// Waiting with reason CreateContainerConfigError.
func VerifyRunAsNonRoot(pod *corev1.Pod, c *corev1.Container, uid *int64, username string) error {
	sc := EffectiveSecurity(pod, c)
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		return nil
	}
	if sc.RunAsUser != nil {
		if *sc.RunAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", PodDesc(pod), c.Name)
		}
		return nil
	}
	switch {
	case uid == nil && len(username) > 0:
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", username, PodDesc(pod), c.Name)
	case uid != nil:
		if *uid == 0 {
			return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", PodDesc(pod), c.Name)
		}
		if errs := validation.IsValidUserID(*uid); len(errs) > 0 {
			return fmt.Errorf("container has runAsNonRoot and image has an invalid user id (%d). (Must be 1-(%d)): %s (pod: %q, container: %s)",
				*uid, math.MaxInt32, strings.Join(errs, "; "), PodDesc(pod), c.Name)
		}
	}
	return nil
}

// Credentials is the process's uid, gid and groups, or an error when the user cannot be
// applied (a username: process pods have no /etc/passwd of the image to resolve it in).
func Credentials(pod *corev1.Pod, c *corev1.Container, img imageconfig.Config) (uid, gid uint32, groups []uint32, err error) {
	sc := EffectiveSecurity(pod, c)
	iu, ig, name := ImageUser(img.User)
	switch {
	case sc.RunAsUser != nil:
		uid = uint32(*sc.RunAsUser)
	case iu != nil:
		uid = uint32(*iu)
	default:
		return 0, 0, nil, fmt.Errorf("image user %q is a name; process pods can only run numeric users (set runAsUser)", name)
	}
	switch {
	case sc.RunAsGroup != nil:
		gid = uint32(*sc.RunAsGroup)
	case ig != nil && sc.RunAsUser == nil:
		gid = uint32(*ig)
	}
	groups = []uint32{gid}
	for _, g := range sc.SupplementalGroups {
		groups = append(groups, uint32(g))
	}
	return uid, gid, groups, nil
}

// Command returns the container's argv with Kubernetes semantics over the image config:
// command replaces ENTRYPOINT and drops CMD, args replace CMD, and $(VAR) in command and args
// expands from the container's env (not the image's ENV), $$ escapes.
func Command(img imageconfig.Config, c *corev1.Container, env map[string]string) []string {
	mapping := expansion.MappingFuncFor(env)
	exp := func(in []string) []string {
		var out []string
		for _, s := range in {
			out = append(out, expansion.Expand(s, mapping))
		}
		return out
	}
	cmd, args := exp(c.Command), exp(c.Args)
	var argv []string
	switch {
	case len(cmd) > 0:
		argv = append(cmd, args...)
	case len(args) > 0:
		argv = append(append([]string(nil), img.Entrypoint...), args...)
	default:
		argv = append(append([]string(nil), img.Entrypoint...), img.Cmd...)
	}
	return argv
}

// Executable maps argv[0] to a host path: the image's main binary (by its in-image path, or
// by its base name looked up on PATH) is the --run-image binary; anything else (sh, a busybox
// applet) is looked up on the host in the container's PATH.
func Executable(argv0 string, img imageconfig.Config, binary string, pathEnv string, lookPath func(string, string) (string, error)) (string, error) {
	main := img.MainBinary()
	if argv0 == main || (!strings.Contains(argv0, "/") && argv0 == path.Base(main)) {
		return binary, nil
	}
	return lookPath(argv0, pathEnv)
}

// Objects is how the env and volume code reads Secrets and ConfigMaps (errors: the API's,
// so a NotFound is recognized for `optional`).
type Objects interface {
	Secret(ctx context.Context, ns, name string) (*corev1.Secret, error)
	ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error)
}

// EnvInput is what the kubelet knows besides the pod when it builds a container's env.
type EnvInput struct {
	PodIP           string
	HostIP          string
	NodeAllocatable corev1.ResourceList
	ServiceEnv      map[string]string // KUBERNETES_SERVICE_HOST etc.
}

// ContainerEnv builds the container's env as the kubelet's makeEnvironmentVariables does
// (k8s.io/kubernetes@v1.36.4 pkg/kubelet/kubelet_pods.go): envFrom first, then env in order,
// each value expanding $(VAR) from the variables before it and the service env, valueFrom
// sources resolved, `optional` honoured; then the service variables not set otherwise.
func ContainerEnv(ctx context.Context, objs Objects, pod *corev1.Pod, c *corev1.Container, in EnvInput) (map[string]string, error) {
	env := map[string]string{}
	secrets := map[string]*corev1.Secret{}
	cms := map[string]*corev1.ConfigMap{}
	getSecret := func(name string) (*corev1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := objs.Secret(ctx, pod.Namespace, name)
		if err == nil {
			secrets[name] = s
		}
		return s, err
	}
	getCM := func(name string) (*corev1.ConfigMap, error) {
		if cm, ok := cms[name]; ok {
			return cm, nil
		}
		cm, err := objs.ConfigMap(ctx, pod.Namespace, name)
		if err == nil {
			cms[name] = cm
		}
		return cm, err
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := getCM(ef.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
					continue
				}
				return nil, err
			}
			for k, v := range cm.Data {
				env[ef.Prefix+k] = v
			}
		case ef.SecretRef != nil:
			s, err := getSecret(ef.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
					continue
				}
				return nil, err
			}
			for k, v := range s.Data {
				env[ef.Prefix+k] = string(v)
			}
		}
	}
	mapping := expansion.MappingFuncFor(env, in.ServiceEnv)
	for _, ev := range c.Env {
		val := ev.Value
		if val != "" {
			val = expansion.Expand(val, mapping)
		} else if vf := ev.ValueFrom; vf != nil {
			var err error
			switch {
			case vf.FieldRef != nil:
				val, err = fieldRef(pod, vf.FieldRef.FieldPath, in)
			case vf.ResourceFieldRef != nil:
				name := vf.ResourceFieldRef.ContainerName
				if name == "" {
					name = c.Name
				}
				val, err = resource.ExtractResourceValueByContainerNameAndNodeAllocatable(vf.ResourceFieldRef, pod, name, in.NodeAllocatable)
			case vf.ConfigMapKeyRef != nil:
				ref := vf.ConfigMapKeyRef
				optional := ref.Optional != nil && *ref.Optional
				cm, gerr := getCM(ref.Name)
				if gerr != nil {
					if apierrors.IsNotFound(gerr) && optional {
						continue
					}
					return nil, gerr
				}
				var ok bool
				if val, ok = cm.Data[ref.Key]; !ok {
					if optional {
						continue
					}
					return nil, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, pod.Namespace, ref.Name)
				}
			case vf.SecretKeyRef != nil:
				ref := vf.SecretKeyRef
				optional := ref.Optional != nil && *ref.Optional
				s, gerr := getSecret(ref.Name)
				if gerr != nil {
					if apierrors.IsNotFound(gerr) && optional {
						continue
					}
					return nil, gerr
				}
				b, ok := s.Data[ref.Key]
				if !ok {
					if optional {
						continue
					}
					return nil, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, pod.Namespace, ref.Name)
				}
				val = string(b)
			}
			if err != nil {
				return nil, err
			}
		}
		env[ev.Name] = val
	}
	for k, v := range in.ServiceEnv {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	return env, nil
}

// fieldRef resolves a downward API field as the kubelet does (podFieldSelectorRuntimeValue).
func fieldRef(pod *corev1.Pod, fp string, in EnvInput) (string, error) {
	switch fp {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return in.HostIP, nil
	case "status.podIP", "status.podIPs":
		return in.PodIP, nil
	}
	return fieldpath.ExtractFieldPathAsString(pod, fp)
}

// ProcessEnv is the environment the process starts with: the image's ENV, overridden by the
// container's env, plus HOSTNAME (the pod name, as runtimes set it) and HOME and PATH
// defaults (containerd's), sorted for a stable order.
func ProcessEnv(img imageconfig.Config, container map[string]string, hostname string) []string {
	m := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": hostname}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	for k, v := range container {
		m[k] = v
	}
	if _, ok := m["HOME"]; !ok {
		m["HOME"] = "/"
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// ServiceEnv is the `kubernetes` Service's env vars, pointing at the apiserver itself (the
// harness's apiserver listens on loopback; its certificate is valid for 127.0.0.1), so
// in-cluster client config works in process pods.
func ServiceEnv(host string, port string) map[string]string {
	addr := "tcp://" + host + ":" + port
	p := "KUBERNETES_PORT_" + port + "_TCP"
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":       host,
		"KUBERNETES_SERVICE_PORT":       port,
		"KUBERNETES_SERVICE_PORT_HTTPS": port,
		"KUBERNETES_PORT":               addr,
		p:                               addr,
		p + "_PROTO":                    "tcp",
		p + "_PORT":                     port,
		p + "_ADDR":                     host,
	}
}
