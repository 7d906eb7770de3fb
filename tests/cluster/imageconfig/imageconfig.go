// Package imageconfig reads the runtime configuration of a container image (the OCI image
// config's ENTRYPOINT, CMD, USER, WORKDIR and ENV) from the final stage of a Dockerfile, so
// that the test cluster's process pods run a host binary exactly as the image would.
// Standard library only: `tests/cluster/image-config` runs it with `go run` in a second.
package imageconfig

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Config is the subset of the OCI image config (`config` object of
// application/vnd.oci.image.config.v1+json) a runtime uses to start a container. Field names
// are the OCI ones, so `docker inspect --format '{{json .Config}}'` output also works.
type Config struct {
	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	User       string   `json:"User"`
	WorkingDir string   `json:"WorkingDir"`
	Env        []string `json:"Env"`
}

// Load reads a Config from a JSON file.
func Load(file string) (Config, error) {
	var c Config
	b, err := os.ReadFile(file)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// MainBinary is the in-image path of the image's program: Entrypoint[0], else Cmd[0].
func (c Config) MainBinary() string {
	if len(c.Entrypoint) > 0 {
		return c.Entrypoint[0]
	}
	if len(c.Cmd) > 0 {
		return c.Cmd[0]
	}
	return ""
}

type stage struct {
	cfg     Config
	cmdSet  bool   // CMD set in this stage (an inherited CMD is dropped by ENTRYPOINT)
	unknown string // external base image, whose config is unknown here
}

// ParseDockerfile returns the image config of the Dockerfile's final stage. buildArgs are
// the values of ARGs (e.g. TARGETARCH); a stage FROM another stage inherits its config, a
// stage FROM an external image other than scratch is an error (its config is unknown here).
func ParseDockerfile(r io.Reader, buildArgs map[string]string) (Config, error) {
	lines, err := logicalLines(r)
	if err != nil {
		return Config{}, err
	}
	stages := map[string]stage{}
	globalArgs := map[string]string{}
	var cur *stage
	var curName string
	var args map[string]string
	var final *stage
	for _, ln := range lines {
		instr, rest, _ := strings.Cut(ln.text, " ")
		instr = strings.ToUpper(instr)
		rest = strings.TrimSpace(rest)
		if instr == "FROM" {
			if cur != nil && curName != "" {
				stages[strings.ToLower(curName)] = *cur
			}
			fields := strings.Fields(rest)
			var image string
			curName = ""
			for i := 0; i < len(fields); i++ {
				f := fields[i]
				switch {
				case strings.HasPrefix(f, "--"):
				case image == "":
					image = expand(f, globalArgs)
				case strings.EqualFold(f, "AS") && i+1 < len(fields):
					curName = fields[i+1]
					i++
				}
			}
			cur = &stage{}
			if base, ok := stages[strings.ToLower(image)]; ok {
				cur.cfg, cur.unknown = clone(base.cfg), base.unknown
			} else if image != "scratch" {
				cur.unknown = image
			}
			args = map[string]string{}
			final = cur
			continue
		}
		if cur == nil {
			if instr == "ARG" {
				k, v := parseArg(rest, buildArgs)
				globalArgs[k] = v
			}
			continue
		}
		env := envMap(cur.cfg.Env, args)
		switch instr {
		case "ARG":
			k, v := parseArg(rest, buildArgs)
			if g, ok := globalArgs[k]; ok && v == "" {
				v = g
			}
			args[k] = v
		case "ENV":
			pairs, err := parseEnv(rest, env)
			if err != nil {
				return Config{}, fmt.Errorf("line %d: %w", ln.no, err)
			}
			for _, p := range pairs {
				cur.cfg.Env = setEnv(cur.cfg.Env, p[0], p[1])
			}
		case "USER":
			cur.cfg.User = expand(rest, env)
		case "WORKDIR":
			w := expand(rest, env)
			if !path.IsAbs(w) {
				w = path.Join("/", cur.cfg.WorkingDir, w)
			}
			cur.cfg.WorkingDir = path.Clean(w)
		case "ENTRYPOINT":
			cur.cfg.Entrypoint = execForm(rest)
			if !cur.cmdSet {
				cur.cfg.Cmd = nil
			}
		case "CMD":
			cur.cfg.Cmd = execForm(rest)
			cur.cmdSet = true
		}
	}
	if final == nil {
		return Config{}, fmt.Errorf("no FROM in the Dockerfile")
	}
	if final.unknown != "" {
		return Config{}, fmt.Errorf("the final stage is based on the external image %s, whose config is unknown", final.unknown)
	}
	return final.cfg, nil
}

type line struct {
	no   int
	text string
}

// logicalLines joins continuation lines and drops comments, blank lines and parser directives.
func logicalLines(r io.Reader) ([]line, error) {
	var out []line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var buf strings.Builder
	start, no := 0, 0
	for sc.Scan() {
		no++
		t := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(t, "#") || (t == "" && buf.Len() == 0) {
			continue
		}
		if buf.Len() == 0 {
			start = no
		}
		if s, ok := strings.CutSuffix(t, "\\"); ok {
			buf.WriteString(s)
			buf.WriteString(" ")
			continue
		}
		buf.WriteString(t)
		out = append(out, line{start, strings.TrimSpace(buf.String())})
		buf.Reset()
	}
	if buf.Len() > 0 {
		out = append(out, line{start, strings.TrimSpace(buf.String())})
	}
	return out, sc.Err()
}

// execForm parses ["a", "b"] (exec form) or a shell-form command (run by /bin/sh -c).
func execForm(s string) []string {
	if strings.HasPrefix(s, "[") {
		var v []string
		if json.Unmarshal([]byte(s), &v) == nil {
			return v
		}
	}
	return []string{"/bin/sh", "-c", s}
}

func parseArg(s string, buildArgs map[string]string) (string, string) {
	k, v, _ := strings.Cut(s, "=")
	if b, ok := buildArgs[k]; ok {
		return k, b
	}
	return k, unquote(v)
}

// parseEnv parses `ENV K=V K2="V 2"` and the legacy `ENV K V W`.
func parseEnv(s string, env map[string]string) ([][2]string, error) {
	var out [][2]string
	first, rest, _ := strings.Cut(s, " ")
	if !strings.Contains(first, "=") {
		return [][2]string{{first, expand(strings.TrimSpace(rest), env)}}, nil
	}
	for _, w := range splitWords(s) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, fmt.Errorf("ENV %q: want KEY=VALUE", w)
		}
		// Values see the variables set before this instruction (Docker semantics).
		out = append(out, [2]string{k, expand(unquote(v), env)})
	}
	return out, nil
}

// splitWords splits on spaces outside double or single quotes.
func splitWords(s string) []string {
	var out []string
	var b strings.Builder
	var q rune
	for _, r := range s {
		switch {
		case q != 0 && r == q:
			q = 0
			b.WriteRune(r)
		case q == 0 && (r == '"' || r == '\''):
			q = r
			b.WriteRune(r)
		case q == 0 && r == ' ':
			if b.Len() > 0 {
				out = append(out, b.String())
				b.Reset()
			}
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// expand substitutes $VAR and ${VAR} (Dockerfile variable substitution, without modifiers).
func expand(s string, env map[string]string) string {
	return os.Expand(s, func(k string) string { return env[k] })
}

func envMap(env []string, args map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range args {
		m[k] = v
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func clone(c Config) Config {
	c.Entrypoint = append([]string(nil), c.Entrypoint...)
	c.Cmd = append([]string(nil), c.Cmd...)
	c.Env = append([]string(nil), c.Env...)
	return c
}
