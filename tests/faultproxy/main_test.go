package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientCert makes a CA and a client certificate signed by it.
func clientCert(t *testing.T) (caPool *x509.CertPool, crtPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ct := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, ct, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	caPool = x509.NewCertPool()
	caPool.AddCert(ca)
	return caPool, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
}

// The binary end to end: client-certificate auth from files named in the kubeconfig, the
// written kubeconfig, the ready file, the admin API, the stats file and SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "api-fault-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pool, crt, key := clientCert(t)
	api := &fakeAPI{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "admin" {
			w.WriteHeader(401)
			return
		}
		api.ServeHTTP(w, r)
	}))
	up.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	up.StartTLS()
	defer up.Close()
	upCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw})
	for name, b := range map[string][]byte{"ca.crt": upCA, "admin.crt": crt, "admin.key": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc := fmt.Sprintf(`# written by hand, with relative paths
apiVersion: v1
kind: Config
clusters:
  - name: "c1"
    cluster:
      server: %s
      certificate-authority: ca.crt
  - name: other
    cluster: {server: "https://example.invalid"}
contexts:
  - name: ctx
    context: {cluster: c1, user: admin}
current-context: ctx
users:
  - name: admin
    user:
      client-certificate: admin.crt
      client-key: 'admin.key'
`, up.URL)
	// flow mappings are not in the subset: spell the entries out instead
	kc = strings.Replace(kc, `cluster: {server: "https://example.invalid"}`, "cluster:\n      server: \"https://example.invalid\"", 1)
	kc = strings.Replace(kc, `context: {cluster: c1, user: admin}`, "context:\n      cluster: c1\n      user: admin", 1)
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	ready, faulty, statsFile := filepath.Join(dir, "ready.json"), filepath.Join(dir, "faulty-kubeconfig"), filepath.Join(dir, "stats.json")
	cmd := exec.Command(bin, "--kubeconfig", filepath.Join(dir, "kubeconfig"), "--out-kubeconfig", faulty,
		"--ready-file", ready, "--stats-file", statsFile, "--seed", "9",
		"--rules", `[{"verbs":["patch"],"resources":["rollouts/status"],"fault":"conflict"}]`)
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 200)
	n, _ := io.ReadAtLeast(stdout, buf, len("listening on https://"))
	if !strings.HasPrefix(string(buf[:n]), "listening on https://127.0.0.1:") {
		t.Fatalf("stdout: %q", buf[:n])
	}
	var rf struct{ URL, Admin, Kubeconfig string }
	for i := 0; ; i++ {
		b, err := os.ReadFile(ready)
		if err == nil {
			if err := json.Unmarshal(b, &rf); err != nil {
				t.Fatal(err)
			}
			break
		}
		if i > 100 {
			t.Fatal("no ready file")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The written kubeconfig: same contexts and user (absolute paths now), server and CA of the proxy.
	b, err := os.ReadFile(faulty)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		CurrentContext string `json:"current-context"`
		Clusters       []struct {
			Name    string
			Cluster map[string]any
		}
		Users []struct {
			Name string
			User map[string]any
		}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.CurrentContext != "ctx" || out.Clusters[0].Cluster["server"] != rf.URL || out.Clusters[0].Cluster["certificate-authority"] != nil ||
		out.Clusters[1].Cluster["server"] != "https://example.invalid" || out.Users[0].User["client-certificate"] != filepath.Join(dir, "admin.crt") {
		t.Fatalf("%s", b)
	}
	proxyCA, _ := base64.StdEncoding.DecodeString(out.Clusters[0].Cluster["certificate-authority-data"].(string))
	cp := x509.NewCertPool()
	cp.AppendCertsFromPEM(proxyCA)
	cpair, _ := tls.X509KeyPair(crt, key)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cp, Certificates: []tls.Certificate{cpair}}}}
	resp, err := c.Get(rf.URL + "/api/v1/namespaces")
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err, resp)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("PATCH", rf.URL+"/apis/argoproj.io/v1alpha1/namespaces/x/rollouts/r/status", strings.NewReader("{}"))
	if resp, err = c.Do(req); err != nil || resp.StatusCode != 409 {
		t.Fatal(err, resp)
	}
	resp.Body.Close()
	resp, err = http.Get(rf.Admin + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st statsJSON
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Seed != 9 || st.Requests != 2 || st.Faults["conflict"] != 1 || st.ByVerbResource["list namespaces"] != 1 {
		t.Fatalf("%+v", st)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	b, err = os.ReadFile(statsFile)
	if err != nil || !strings.Contains(string(b), `"conflict": 1`) {
		t.Fatalf("stats file: %v %s", err, b)
	}
	if _, err := os.Stat(ready); !os.IsNotExist(err) {
		t.Fatal("ready file left behind")
	}
}
