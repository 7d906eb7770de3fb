package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// readManifests returns every non-empty YAML/JSON document of the *.yaml, *.yml and *.json
// files directly in dir, in file-name order. A missing directory yields nothing.
func readManifests(dir string) ([]*unstructured.Unstructured, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") || e.Name() == "kustomization.yaml" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		docs, err := splitDocs(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, docs...)
	}
	return out, nil
}

func splitDocs(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// normalizeCRD returns an apiextensions.k8s.io/v1 CRD ready to apply. A v1beta1 CRD (removed
// from the API in Kubernetes 1.22; some projects still publish only that form) is converted
// with the apiserver's own conversion functions, then made structural the way v1 requires:
// a root "type: object" and preserveUnknownFields=false (unknown fields are pruned).
func normalizeCRD(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if u.GetKind() != "CustomResourceDefinition" {
		return nil, fmt.Errorf("%s %q is not a CustomResourceDefinition (only CRDs are installed)", u.GetKind(), u.GetName())
	}
	switch u.GetAPIVersion() {
	case "apiextensions.k8s.io/v1":
		return u, nil
	case "apiextensions.k8s.io/v1beta1":
	default:
		return nil, fmt.Errorf("CRD %q: unsupported apiVersion %q", u.GetName(), u.GetAPIVersion())
	}
	scheme := runtime.NewScheme()
	apiextinstall.Install(scheme)
	var old apiextv1beta1.CustomResourceDefinition
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &old); err != nil {
		return nil, err
	}
	scheme.Default(&old)
	var internal apiextensions.CustomResourceDefinition
	if err := scheme.Convert(&old, &internal, nil); err != nil {
		return nil, err
	}
	var crd apiextv1.CustomResourceDefinition
	if err := scheme.Convert(&internal, &crd, nil); err != nil {
		return nil, err
	}
	crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
	crd.Status = apiextv1.CustomResourceDefinitionStatus{}
	crd.Spec.PreserveUnknownFields = false
	for i := range crd.Spec.Versions {
		s := crd.Spec.Versions[i].Schema
		if s == nil || s.OpenAPIV3Schema == nil {
			crd.Spec.Versions[i].Schema = &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
				Type: "object", XPreserveUnknownFields: ptrTo(true)}}
		} else if s.OpenAPIV3Schema.Type == "" {
			s.OpenAPIV3Schema.Type = "object"
		}
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&crd)
	if err != nil {
		return nil, err
	}
	delete(obj, "status")
	unstructured.RemoveNestedField(obj, "metadata", "creationTimestamp")
	return &unstructured.Unstructured{Object: obj}, nil
}

func ptrTo[T any](v T) *T { return &v }

// installCRDs applies every CRD found in dirs (server-side apply, forced) and waits until all
// of them are Established. check is polled while waiting and aborts the wait on error.
func installCRDs(ctx context.Context, rc *rest.Config, dirs []string, check func() error) (int, error) {
	var crds []*unstructured.Unstructured
	for _, dir := range dirs {
		docs, err := readManifests(dir)
		if err != nil {
			return 0, err
		}
		for _, d := range docs {
			crd, err := normalizeCRD(d)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", dir, err)
			}
			crds = append(crds, crd)
		}
	}
	if len(crds) == 0 {
		return 0, nil
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return 0, err
	}
	api := dyn.Resource(crdGVR)
	for _, crd := range crds {
		for {
			_, err := api.Apply(ctx, crd.GetName(), crd, metav1.ApplyOptions{FieldManager: "k8s-harness", Force: true})
			if err == nil {
				break
			}
			// Right after start-up the apiextensions server may still refuse; retry until check says stop.
			if cerr := check(); cerr != nil {
				return 0, fmt.Errorf("CRD %s: %w (last error: %v)", crd.GetName(), cerr, err)
			}
			log.Printf("applying CRD %s: %v (retrying)", crd.GetName(), err)
			time.Sleep(500 * time.Millisecond)
		}
	}
	for _, crd := range crds {
		for {
			got, err := api.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err == nil && crdEstablished(got) {
				break
			}
			if cerr := check(); cerr != nil {
				return 0, fmt.Errorf("CRD %s not Established: %w", crd.GetName(), cerr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return len(crds), nil
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// pin is one line of the pins file: MODULE@VERSION H1-SUM PATH NAMES [serve=V1,V2].
type pin struct {
	modVer, sum, path string
	names             []string // CRD names to take; "*" takes all
	serve             []string // versions to mark served (only for CRDs that share one schema)
	line              int
}

func readPins(file string) ([]pin, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pins []pin
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || len(fields) > 5 || !strings.Contains(fields[0], "@") || !strings.HasPrefix(fields[1], "h1:") {
			return nil, fmt.Errorf("%s:%d: want 'MODULE@VERSION h1:SUM PATH NAME[,NAME...]|* [serve=VERSION,...]'", file, n)
		}
		p := pin{modVer: fields[0], sum: fields[1], path: fields[2], names: strings.Split(fields[3], ","), line: n}
		if len(fields) == 5 {
			v, ok := strings.CutPrefix(fields[4], "serve=")
			if !ok {
				return nil, fmt.Errorf("%s:%d: unknown option %q", file, n, fields[4])
			}
			p.serve = strings.Split(v, ",")
		}
		pins = append(pins, p)
	}
	return pins, sc.Err()
}

// moduleDir downloads (or finds in the module cache) one module version with the go command,
// which checks it against the checksum database, and checks it against the pinned sum too.
func moduleDir(modVer, wantSum string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", modVer)
	cmd.Dir = os.TempDir() // outside any module: never touches a go.mod
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(out, &res); err != nil {
		return "", fmt.Errorf("go mod download %s: %v %s", modVer, runErr, stderr.String())
	}
	if res.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", modVer, res.Error)
	}
	if res.Sum != wantSum {
		return "", fmt.Errorf("%s: module sum %s, pinned %s", modVer, res.Sum, wantSum)
	}
	return res.Dir, nil
}

func stageCRDsMain(argv []string) int {
	fs := flag.NewFlagSet("stage-crds", flag.ExitOnError)
	pinsFile := fs.String("pins", "", "pins file (MODULE@VERSION h1:SUM PATH NAMES per line)")
	outDir := fs.String("out", "", "output directory; its *.yaml files are replaced")
	_ = fs.Parse(argv)
	if *pinsFile == "" || *outDir == "" {
		fmt.Fprintln(os.Stderr, "usage: k8s-harness stage-crds --pins FILE --out DIR")
		return 2
	}
	if err := stageCRDs(*pinsFile, *outDir); err != nil {
		fmt.Fprintln(os.Stderr, "stage-crds:", err)
		return 1
	}
	return 0
}

func stageCRDs(pinsFile, outDir string) error {
	pins, err := readPins(pinsFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(outDir, "*.yaml"))
	for _, o := range old {
		_ = os.Remove(o)
	}
	var sources []string
	for _, p := range pins {
		dir, err := moduleDir(p.modVer, p.sum)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", pinsFile, p.line, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p.path)))
		if err != nil {
			return fmt.Errorf("%s:%d: %w", pinsFile, p.line, err)
		}
		docs, err := splitDocs(b)
		if err != nil {
			return fmt.Errorf("%s %s: %w", p.modVer, p.path, err)
		}
		found := map[string]bool{}
		for _, d := range docs {
			if d.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if !slices.Contains(p.names, "*") && !slices.Contains(p.names, d.GetName()) {
				continue
			}
			crd, err := normalizeCRD(d)
			if err != nil {
				return fmt.Errorf("%s %s: %w", p.modVer, p.path, err)
			}
			note := ""
			if d.GetAPIVersion() != crd.GetAPIVersion() {
				note = fmt.Sprintf("# converted from %s by k8s-harness stage-crds\n", d.GetAPIVersion())
			}
			if len(p.serve) > 0 {
				if err := serveVersions(crd, p.serve); err != nil {
					return fmt.Errorf("%s:%d: %w", pinsFile, p.line, err)
				}
				note += fmt.Sprintf("# served versions set to %s by k8s-harness stage-crds (pins file)\n", strings.Join(p.serve, ","))
			}
			y, err := yaml.Marshal(crd.Object)
			if err != nil {
				return err
			}
			header := fmt.Sprintf("# source: %s %s (Go module cache, %s)\n%s---\n", p.modVer, p.path, p.sum, note)
			if err := os.WriteFile(filepath.Join(outDir, d.GetName()+".yaml"), append([]byte(header), y...), 0o644); err != nil {
				return err
			}
			found[d.GetName()] = true
			sources = append(sources, fmt.Sprintf("%s\t%s %s", d.GetName(), p.modVer, p.path))
		}
		for _, n := range p.names {
			if n != "*" && !found[n] {
				return fmt.Errorf("%s:%d: no CRD %q in %s %s", pinsFile, p.line, n, p.modVer, p.path)
			}
		}
	}
	sort.Strings(sources)
	return os.WriteFile(filepath.Join(outDir, "SOURCES"), []byte(strings.Join(sources, "\n")+"\n"), 0o644)
}

// serveVersions marks exactly the given versions of crd as served. Only meaningful where all
// versions share one schema (a converted v1beta1 CRD with a top-level schema).
func serveVersions(crd *unstructured.Unstructured, serve []string) error {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	seen := map[string]bool{}
	for _, v := range versions {
		m := v.(map[string]any)
		name, _ := m["name"].(string)
		m["served"] = slices.Contains(serve, name)
		seen[name] = true
	}
	for _, s := range serve {
		if !seen[s] {
			return fmt.Errorf("CRD %s has no version %q", crd.GetName(), s)
		}
	}
	return unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions")
}
