// Package procpod runs the containers of test-cluster pods as host processes: the fake
// kubelet hands it every pod whose container image matches a `--run-image NAME=PATH`, and it
// starts PATH as a kubelet would start the container (command and args over the image's
// ENTRYPOINT/CMD, env and envFrom, volumes and the service account token in a private mount
// namespace, securityContext users, probes, restarts, graceful termination, logs).
package procpod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rollout-runner/rollout-runner/tests/cluster/imageconfig"
)

// RunImage maps an image repository to a host binary and the image's config.
type RunImage struct {
	Name       string // normalized repository, e.g. docker.io/library/nginx; with Tag or Digest if given
	Tag        string
	Digest     string
	Path       string // absolute path of the host binary that stands for the image's main binary
	ConfigFile string // "" when no config file exists (the binary is the ENTRYPOINT, no USER)
	Config     imageconfig.Config
}

// ParseRunImage parses NAME=PATH or NAME=PATH:CONFIG. Without CONFIG, PATH.image.json is read
// when it exists; otherwise the image config is just ENTRYPOINT [PATH] (root user, no env).
func ParseRunImage(spec string) (RunImage, error) {
	name, rest, ok := strings.Cut(spec, "=")
	if !ok || name == "" || rest == "" {
		return RunImage{}, fmt.Errorf("--run-image %q: want NAME=PATH or NAME=PATH:CONFIG", spec)
	}
	ri := RunImage{}
	ri.Name, ri.Tag, ri.Digest = splitImage(name)
	p, cfg := rest, ""
	if i := strings.LastIndex(rest, ":"); i > 0 {
		p, cfg = rest[:i], rest[i+1:]
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return RunImage{}, err
	}
	ri.Path = abs
	if st, err := os.Stat(abs); err != nil {
		return RunImage{}, fmt.Errorf("--run-image %s: %w", spec, err)
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		return RunImage{}, fmt.Errorf("--run-image %s: %s is not an executable file", spec, abs)
	}
	if cfg == "" {
		if _, err := os.Stat(abs + ".image.json"); err == nil {
			cfg = abs + ".image.json"
		}
	}
	if cfg != "" {
		if ri.ConfigFile, err = filepath.Abs(cfg); err != nil {
			return RunImage{}, err
		}
		if ri.Config, err = imageconfig.Load(ri.ConfigFile); err != nil {
			return RunImage{}, fmt.Errorf("--run-image %s: %w", spec, err)
		}
	} else {
		ri.Config = imageconfig.Config{Entrypoint: []string{abs}}
	}
	if ri.Config.MainBinary() == "" {
		return RunImage{}, fmt.Errorf("--run-image %s: the image config has neither Entrypoint nor Cmd", spec)
	}
	return ri, nil
}

// Matches reports whether a pod's container image is this run image: the repositories are
// equal after normalization (docker.io/library/ added to short names) and, when the
// --run-image NAME carries a tag or digest, that tag or digest is equal too. A NAME without
// tag or digest matches every tag and digest of the repository.
func (ri RunImage) Matches(image string) bool {
	name, tag, digest := splitImage(image)
	if name != ri.Name {
		return false
	}
	if ri.Digest != "" && digest != ri.Digest {
		return false
	}
	if ri.Tag != "" && tag != ri.Tag {
		return false
	}
	return true
}

// Find returns the first run image matching image.
func Find(images []RunImage, image string) (RunImage, bool) {
	for _, ri := range images {
		if ri.Matches(image) {
			return ri, true
		}
	}
	return RunImage{}, false
}

// splitImage splits a reference into its normalized repository, tag and digest, with the
// rules of the Docker reference grammar: the tag is after the last ':' that follows the last
// '/', a first component without '.', ':' or "localhost" is not a registry.
func splitImage(ref string) (name, tag, digest string) {
	name = ref
	if i := strings.Index(name, "@"); i >= 0 {
		name, digest = name[:i], name[i+1:]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	first, _, hasSlash := strings.Cut(name, "/")
	if !hasSlash || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !hasSlash {
			name = "library/" + name
		}
		name = "docker.io/" + name
	}
	if strings.HasPrefix(name, "index.docker.io/") {
		name = "docker.io/" + strings.TrimPrefix(name, "index.docker.io/")
	}
	return strings.ToLower(name), tag, digest
}
