package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The kubeconfig is YAML; to stay stdlib-only we read the block-style subset that clientcmd
// and kubectl write (mappings, sequences, plain and quoted scalars, empty {} and [] and flow
// lists of scalars) and reject anything else with an error rather than guessing. JSON
// kubeconfigs are read as JSON. The output kubeconfig is written as JSON (valid YAML).

type yline struct {
	indent int
	text   string
	num    int
}

func parseYAMLSubset(src []byte) (any, error) {
	if t := bytes.TrimSpace(src); len(t) > 0 && t[0] == '{' {
		var v any
		d := json.NewDecoder(bytes.NewReader(t))
		d.UseNumber()
		return v, d.Decode(&v)
	}
	var lines []yline
	for i, raw := range strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n") {
		if lead := raw[:len(raw)-len(strings.TrimLeft(raw, " \t"))]; strings.Contains(lead, "\t") {
			return nil, fmt.Errorf("kubeconfig line %d: tab indentation", i+1)
		}
		t := strings.TrimLeft(raw, " ")
		if t == "" || strings.HasPrefix(t, "#") || t == "---" {
			continue
		}
		lines = append(lines, yline{indent: len(raw) - len(t), text: strings.TrimRight(t, " "), num: i + 1})
	}
	if len(lines) == 0 {
		return map[string]any{}, nil
	}
	p := &yparser{lines: lines}
	v, err := p.block(lines[0].indent)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("kubeconfig line %d: unexpected indentation", p.lines[p.i].num)
	}
	return v, nil
}

type yparser struct {
	lines []yline
	i     int
}

func isDash(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

func (p *yparser) block(ind int) (any, error) {
	if isDash(p.lines[p.i].text) {
		return p.seq(ind)
	}
	return p.mapping(ind)
}

func (p *yparser) seq(ind int) (any, error) {
	out := []any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == ind && isDash(p.lines[p.i].text) {
		l := p.lines[p.i]
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		switch {
		case rest == "":
			p.i++
			if p.i < len(p.lines) && p.lines[p.i].indent > ind {
				v, err := p.block(p.lines[p.i].indent)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			} else {
				out = append(out, nil)
			}
		case isKeyLine(rest) || isDash(rest):
			// "- key: v" starts a mapping whose keys line up with "key".
			p.lines[p.i] = yline{indent: ind + len(l.text) - len(rest), text: rest, num: l.num}
			v, err := p.block(p.lines[p.i].indent)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		default:
			v, err := scalar(rest, l.num)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			p.i++
		}
	}
	return out, nil
}

var keyRe = regexp.MustCompile(`^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^'"\s#\-\[\]{}][^:#]*?|-[^\s:#][^:#]*?)\s*:(\s|$)`)

func isKeyLine(t string) bool { return keyRe.MatchString(t) }

func (p *yparser) mapping(ind int) (any, error) {
	out := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent >= ind {
		l := p.lines[p.i]
		if l.indent > ind {
			return nil, fmt.Errorf("kubeconfig line %d: unexpected indentation", l.num)
		}
		if isDash(l.text) {
			break // a sequence at this indent belongs to the parent key
		}
		m := keyRe.FindStringSubmatch(l.text)
		if m == nil {
			return nil, fmt.Errorf("kubeconfig line %d: expected \"key: value\": %q", l.num, l.text)
		}
		k, err := scalar(m[1], l.num)
		if err != nil {
			return nil, err
		}
		key := fmt.Sprint(k)
		rest := strings.TrimSpace(l.text[len(m[0]):])
		p.i++
		if rest == "" || strings.HasPrefix(rest, "#") {
			if p.i < len(p.lines) && (p.lines[p.i].indent > ind || (p.lines[p.i].indent == ind && isDash(p.lines[p.i].text))) {
				v, err := p.block(p.lines[p.i].indent)
				if err != nil {
					return nil, err
				}
				out[key] = v
			} else {
				out[key] = nil
			}
			continue
		}
		v, err := scalar(rest, l.num)
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	return out, nil
}

var numRe = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

func scalar(s string, num int) (any, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		end := strings.LastIndex(s, `"`)
		if end == 0 || strings.TrimSpace(strings.SplitN(s[end+1:], "#", 2)[0]) != "" {
			return nil, fmt.Errorf("kubeconfig line %d: bad double-quoted string", num)
		}
		var v string
		if err := json.Unmarshal([]byte(s[:end+1]), &v); err != nil {
			return nil, fmt.Errorf("kubeconfig line %d: %v", num, err)
		}
		return v, nil
	case strings.HasPrefix(s, `'`):
		end := strings.LastIndex(s, `'`)
		if end == 0 || strings.TrimSpace(strings.SplitN(s[end+1:], "#", 2)[0]) != "" {
			return nil, fmt.Errorf("kubeconfig line %d: bad single-quoted string", num)
		}
		return strings.ReplaceAll(s[1:end], "''", "'"), nil
	case strings.HasPrefix(s, "|") || strings.HasPrefix(s, ">") || strings.HasPrefix(s, "&") || strings.HasPrefix(s, "*") || strings.HasPrefix(s, "!"):
		return nil, fmt.Errorf("kubeconfig line %d: YAML block scalars, anchors and tags are not supported: %q", num, s)
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	switch s {
	case "{}":
		return map[string]any{}, nil
	case "[]":
		return []any{}, nil
	case "null", "~", "Null", "NULL":
		return nil, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		out := []any{}
		for _, item := range strings.Split(s[1:len(s)-1], ",") {
			item = strings.TrimSpace(item)
			if strings.ContainsAny(item, "[]{}") {
				return nil, fmt.Errorf("kubeconfig line %d: nested flow collections are not supported", num)
			}
			v, err := scalar(item, num)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	if strings.HasPrefix(s, "{") {
		return nil, fmt.Errorf("kubeconfig line %d: flow mappings are not supported", num)
	}
	if numRe.MatchString(s) {
		return json.Number(s), nil
	}
	return s, nil
}

// kubeconfig is the parsed file and what the proxy needs from its current context.
type kubeconfig struct {
	path    string
	tree    map[string]any
	cluster map[string]any // the current context's cluster entry ("cluster" map)
	user    map[string]any // the current context's user entry ("user" map), may be empty
	server  string
}

func namedEntry(tree map[string]any, list, name, field string) (map[string]any, error) {
	items, _ := tree[list].([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		if m != nil && fmt.Sprint(m["name"]) == name {
			inner, _ := m[field].(map[string]any)
			if inner == nil {
				inner = map[string]any{}
				m[field] = inner
			}
			return inner, nil
		}
	}
	return nil, fmt.Errorf("kubeconfig: no %s entry named %q", list, name)
}

func loadKubeconfig(path, context string) (*kubeconfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := parseYAMLSubset(b)
	if err != nil {
		return nil, err
	}
	tree, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("kubeconfig: not a mapping")
	}
	if context == "" {
		context, _ = tree["current-context"].(string)
	}
	if context == "" {
		return nil, errors.New("kubeconfig: no current-context and no --context")
	}
	ctx, err := namedEntry(tree, "contexts", context, "context")
	if err != nil {
		return nil, err
	}
	tree["current-context"] = context
	kc := &kubeconfig{path: path, tree: tree}
	if kc.cluster, err = namedEntry(tree, "clusters", fmt.Sprint(ctx["cluster"]), "cluster"); err != nil {
		return nil, err
	}
	if u, ok := ctx["user"]; ok && u != nil {
		if kc.user, err = namedEntry(tree, "users", fmt.Sprint(u), "user"); err != nil {
			return nil, err
		}
	} else {
		kc.user = map[string]any{}
	}
	kc.server, _ = kc.cluster["server"].(string)
	if kc.server == "" {
		return nil, errors.New("kubeconfig: the cluster has no server")
	}
	for _, unsupported := range []string{"exec", "auth-provider"} {
		if kc.user[unsupported] != nil {
			return nil, fmt.Errorf("kubeconfig: user %s credentials are not supported by the proxy", unsupported)
		}
	}
	return kc, nil
}

// file resolves a path in the kubeconfig relative to the kubeconfig's directory, as kubectl does.
func (kc *kubeconfig) file(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(kc.path), p)
}

// data returns "<field>-data" (base64) or the file named by "<field>".
func (kc *kubeconfig) data(m map[string]any, field string) ([]byte, error) {
	if s, _ := m[field+"-data"].(string); s != "" {
		return base64.StdEncoding.DecodeString(s)
	}
	if p, _ := m[field].(string); p != "" {
		return os.ReadFile(kc.file(p))
	}
	return nil, nil
}

// upstreamAuth is how the proxy talks to the apiserver: TLS settings and, if any, a bearer
// token or basic auth from the kubeconfig's user.
type upstreamAuth struct {
	tls                *tls.Config
	token              string
	username, password string
}

func (kc *kubeconfig) upstream() (*upstreamAuth, error) {
	ua := &upstreamAuth{tls: &tls.Config{MinVersion: tls.VersionTLS12}}
	ca, err := kc.data(kc.cluster, "certificate-authority")
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: certificate authority: %w", err)
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("kubeconfig: no certificate in the certificate authority")
		}
		ua.tls.RootCAs = pool
	}
	if b, _ := kc.cluster["insecure-skip-tls-verify"].(bool); b {
		ua.tls.InsecureSkipVerify = true
	}
	if s, _ := kc.cluster["tls-server-name"].(string); s != "" {
		ua.tls.ServerName = s
	}
	crt, err := kc.data(kc.user, "client-certificate")
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: client certificate: %w", err)
	}
	key, err := kc.data(kc.user, "client-key")
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: client key: %w", err)
	}
	if len(crt) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(crt, key)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig: client certificate: %w", err)
		}
		ua.tls.Certificates = []tls.Certificate{pair}
	}
	ua.token, _ = kc.user["token"].(string)
	if ua.token == "" {
		if p, _ := kc.user["tokenFile"].(string); p != "" {
			b, err := os.ReadFile(kc.file(p))
			if err != nil {
				return nil, fmt.Errorf("kubeconfig: tokenFile: %w", err)
			}
			ua.token = strings.TrimSpace(string(b))
		}
	}
	ua.username, _ = kc.user["username"].(string)
	ua.password, _ = kc.user["password"].(string)
	return ua, nil
}

// writeFaulty writes the kubeconfig again with the current cluster pointing at the proxy and
// trusting its CA; relative file paths become absolute so the copy works from any directory.
func (kc *kubeconfig) writeFaulty(out, server string, caPEM []byte) error {
	for _, k := range []string{"certificate-authority", "insecure-skip-tls-verify", "tls-server-name", "proxy-url"} {
		delete(kc.cluster, k)
	}
	kc.cluster["server"] = server
	kc.cluster["certificate-authority-data"] = base64.StdEncoding.EncodeToString(caPEM)
	for _, k := range []string{"client-certificate", "client-key", "tokenFile"} {
		if p, _ := kc.user[k].(string); p != "" {
			if abs, err := filepath.Abs(kc.file(p)); err == nil {
				kc.user[k] = abs
			}
		}
	}
	b, err := json.MarshalIndent(kc.tree, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(out, append(b, '\n'), 0o600)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
