package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// serveContainerLogs is the one kubelet API endpoint the fake kubelet has, for process pods:
// GET /containerLogs/NS/POD/CONTAINER (what `kubectl logs` reaches through the apiserver's
// pods/log), with tailLines, limitBytes and follow. The apiserver does not verify a
// kubelet's serving certificate unless --kubelet-certificate-authority is set, so a
// throwaway self-signed one will do. Nodes advertise it as InternalDNS 127.0.0.1 (the
// apiserver prefers InternalDNS, see up.go) and daemonEndpoints.kubeletEndpoint.port.
func (k *fakeKubelet) serveContainerLogs(ctx context.Context, l net.Listener) {
	cert, err := selfSignedCert()
	if err != nil {
		log.Printf("container logs endpoint: %v", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		file, done, ok := k.proc.LogFile(r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"))
		if !ok {
			http.Error(w, "no such process pod container on this fake kubelet (simulated pods have no logs)", http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		f, err := os.Open(file)
		if err != nil {
			// Not started yet: no output so far.
			f, _ = os.Open(os.DevNull)
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if n, err := strconv.Atoi(q.Get("tailLines")); err == nil && n >= 0 {
			b = tailLines(b, n)
		}
		limit := int64(-1)
		if n, err := strconv.ParseInt(q.Get("limitBytes"), 10, 64); err == nil && n > 0 {
			limit = n
		}
		write := func(p []byte) bool {
			if limit >= 0 && int64(len(p)) > limit {
				p = p[:limit]
			}
			if _, err := w.Write(p); err != nil {
				return false
			}
			if limit >= 0 {
				limit -= int64(len(p))
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			return limit != 0
		}
		w.Header().Set("Content-Type", "text/plain")
		if !write(b) || q.Get("follow") != "true" {
			return
		}
		buf := make([]byte, 32<<10)
		for {
			n, _ := f.Read(buf)
			if n > 0 {
				if !write(buf[:n]) {
					return
				}
				continue
			}
			select {
			case <-r.Context().Done():
				return
			case <-done:
				// Drain what the last process wrote, then end the stream.
				rest, _ := io.ReadAll(f)
				write(rest)
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ServeTLS(l, "", ""); err != nil && err != http.ErrServerClosed {
		log.Printf("container logs endpoint: %v", err)
	}
}

func tailLines(b []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		lines = append(lines, append(append([]byte(nil), sc.Bytes()...), '\n'))
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, nil)
}

func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake-kubelet"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
