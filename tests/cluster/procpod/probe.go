package procpod

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeTransport is shared by all HTTP probes: no keep-alive (the kubelet opens a connection
// per probe), no certificate checks (the kubelet does none for HTTPS probes).
var probeTransport = &http.Transport{
	DisableKeepAlives: true,
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet
	Proxy:             nil,
}

// resolvePort maps a probe port (number or container port name) to a number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found in the container's ports", p.StrVal)
}

// probeOnce runs a probe once; it succeeds as the kubelet's: HTTP 200-399, a TCP connection,
// an exec exit code 0. exec runs the command in the container (nil: unsupported).
func probeOnce(ctx context.Context, p *corev1.Probe, podIP string, c *corev1.Container, exec func(context.Context, []string) error) (bool, string) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		h := p.HTTPGet
		port, err := resolvePort(h.Port, c)
		if err != nil {
			return false, err.Error()
		}
		host := h.Host
		if host == "" {
			host = podIP
		}
		scheme := "http"
		if h.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
		pu, err := url.Parse(h.Path)
		if err != nil {
			return false, err.Error()
		}
		u = u.ResolveReference(&url.URL{Path: "/"}).ResolveReference(pu)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "kube-probe/1.36")
		req.Header.Set("Accept", "*/*")
		for _, hd := range h.HTTPHeaders {
			if http.CanonicalHeaderKey(hd.Name) == "Host" {
				req.Host = hd.Value
				continue
			}
			req.Header.Add(hd.Name, hd.Value)
		}
		resp, err := (&http.Client{Transport: probeTransport}).Do(req)
		if err != nil {
			return false, fmt.Sprintf("Get %q: %v", u.String(), err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 400 {
			return true, ""
		}
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return false, err.Error()
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case p.Exec != nil:
		if exec == nil {
			return false, "exec probes need nsenter (util-linux)"
		}
		if err := exec(ctx, p.Exec.Command); err != nil {
			return false, err.Error()
		}
		return true, ""
	}
	return false, "unsupported probe handler (process pods: httpGet, tcpSocket, exec)"
}

// probeParams returns the probe's settings with the API defaults.
func probeParams(p *corev1.Probe) (initial, period time.Duration, success, failure int) {
	initial = time.Duration(p.InitialDelaySeconds) * time.Second
	period = time.Duration(p.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	success, failure = int(p.SuccessThreshold), int(p.FailureThreshold)
	if success <= 0 {
		success = 1
	}
	if failure <= 0 {
		failure = 3
	}
	return
}
