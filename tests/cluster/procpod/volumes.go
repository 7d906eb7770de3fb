package procpod

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubernetes/pkg/api/v1/resource"
)

// writeVolumes materializes the pod's volumes under dir/volumes/NAME and returns the host
// directory of each. Secret, ConfigMap, downward API and projected volumes (including the
// service account token from the TokenRequest API, bound to the pod) are written once, when
// the pod starts: later changes of the objects are not seen, and tokens are not refreshed.
func writeVolumes(ctx context.Context, cs kubernetes.Interface, objs Objects, pod *corev1.Pod, dir string, in EnvInput) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		vd := filepath.Join(dir, "volumes", v.Name)
		var files map[string]file
		var err error
		switch {
		case v.EmptyDir != nil:
			// World-writable, as the kubelet makes emptyDirs, so any user can write.
			if err := os.MkdirAll(vd, 0o777); err != nil {
				return nil, err
			}
			if err := os.Chmod(vd, 0o777); err != nil {
				return nil, err
			}
			out[v.Name] = vd
			continue
		case v.HostPath != nil:
			if t := v.HostPath.Type; t != nil && *t == corev1.HostPathDirectoryOrCreate {
				if err := os.MkdirAll(v.HostPath.Path, 0o755); err != nil {
					return nil, err
				}
			}
			out[v.Name] = v.HostPath.Path
			continue
		case v.Secret != nil:
			files, err = secretFiles(ctx, objs, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, v.Secret.DefaultMode)
		case v.ConfigMap != nil:
			files, err = configMapFiles(ctx, objs, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, v.ConfigMap.DefaultMode)
		case v.DownwardAPI != nil:
			files, err = downwardFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode, in)
		case v.Projected != nil:
			files, err = projectedFiles(ctx, cs, objs, pod, v.Projected, in)
		default:
			return nil, fmt.Errorf("volume %q: only emptyDir, hostPath, secret, configMap, downwardAPI and projected volumes work in process pods", v.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		if err := writeFiles(vd, files); err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		out[v.Name] = vd
	}
	return out, nil
}

type file struct {
	data []byte
	mode os.FileMode
}

func modeOf(m *int32, def *int32) os.FileMode {
	switch {
	case m != nil:
		return os.FileMode(*m)
	case def != nil:
		return os.FileMode(*def)
	}
	return 0o644 // the API's default (420)
}

func keyFiles(data map[string][]byte, items []corev1.KeyToPath, defMode *int32, optional bool, kind, ns, name string) (map[string]file, error) {
	out := map[string]file{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = file{v, modeOf(nil, defMode)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("configured to use key %s from %s %s/%s, but no such key exists", it.Key, kind, ns, name)
		}
		out[it.Path] = file{v, modeOf(it.Mode, defMode)}
	}
	return out, nil
}

func secretFiles(ctx context.Context, objs Objects, ns, name string, items []corev1.KeyToPath, optional *bool, defMode *int32) (map[string]file, error) {
	s, err := objs.Secret(ctx, ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return map[string]file{}, nil
		}
		return nil, err
	}
	return keyFiles(s.Data, items, defMode, optional != nil && *optional, "secret", ns, name)
}

func configMapFiles(ctx context.Context, objs Objects, ns, name string, items []corev1.KeyToPath, optional *bool, defMode *int32) (map[string]file, error) {
	cm, err := objs.ConfigMap(ctx, ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return map[string]file{}, nil
		}
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles(data, items, defMode, optional != nil && *optional, "configmap", ns, name)
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defMode *int32, in EnvInput) (map[string]file, error) {
	out := map[string]file{}
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			// Labels and annotations render one key="value" a line (fieldpath.FormatMap).
			v, err = fieldRef(pod, it.FieldRef.FieldPath, in)
		case it.ResourceFieldRef != nil:
			v, err = resource.ExtractResourceValueByContainerNameAndNodeAllocatable(it.ResourceFieldRef, pod, it.ResourceFieldRef.ContainerName, in.NodeAllocatable)
		}
		if err != nil {
			return nil, err
		}
		out[it.Path] = file{[]byte(v), modeOf(it.Mode, defMode)}
	}
	return out, nil
}

func projectedFiles(ctx context.Context, cs kubernetes.Interface, objs Objects, pod *corev1.Pod, p *corev1.ProjectedVolumeSource, in EnvInput) (map[string]file, error) {
	out := map[string]file{}
	add := func(m map[string]file) {
		for k, v := range m {
			out[k] = v
		}
	}
	for _, src := range p.Sources {
		switch {
		case src.Secret != nil:
			m, err := secretFiles(ctx, objs, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional, p.DefaultMode)
			if err != nil {
				return nil, err
			}
			add(m)
		case src.ConfigMap != nil:
			m, err := configMapFiles(ctx, objs, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, p.DefaultMode)
			if err != nil {
				return nil, err
			}
			add(m)
		case src.DownwardAPI != nil:
			m, err := downwardFiles(pod, src.DownwardAPI.Items, p.DefaultMode, in)
			if err != nil {
				return nil, err
			}
			add(m)
		case src.ServiceAccountToken != nil:
			t := src.ServiceAccountToken
			exp := int64(3600)
			if t.ExpirationSeconds != nil {
				exp = *t.ExpirationSeconds
			}
			tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				ExpirationSeconds: &exp,
				BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
			}}
			if t.Audience != "" {
				tr.Spec.Audiences = []string{t.Audience}
			}
			sa := pod.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			res, err := cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("token for service account %s: %w", sa, err)
			}
			out[t.Path] = file{[]byte(res.Status.Token), modeOf(nil, p.DefaultMode)}
		default:
			return nil, fmt.Errorf("unsupported projected source (only secret, configMap, downwardAPI, serviceAccountToken)")
		}
	}
	return out, nil
}

// writeFiles replaces dir with the files (paths may have subdirectories).
func writeFiles(dir string, files map[string]file) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for p, f := range files {
		full := filepath.Join(dir, filepath.Clean("/"+p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}
