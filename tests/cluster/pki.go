package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// pkiBundle holds what the kubeconfig needs; everything is also written to the pki dir.
type pkiBundle struct {
	caPEM, adminCrt, adminKey []byte
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writePKI creates a CA, the apiserver's serving certificate (signed by the CA, so clients
// such as rustls that refuse self-signed leaves accept it), an admin client certificate in
// system:masters, the front proxy (aggregation layer) CA and client certificate, and the
// service account signing key.
func writePKI(dir string) (*pkiBundle, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
		return n
	}
	newCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, nil, nil, err
		}
		cert, err := x509.ParseCertificate(der)
		return cert, key, pemOf("CERTIFICATE", der), err
	}
	issueBy := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, org []string, eku x509.ExtKeyUsage, dns []string, ips []net.IP) ([]byte, []byte, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		t := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: org},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
			DNSNames: dns, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, t, ca, k.Public(), caKey)
		if err != nil {
			return nil, nil, err
		}
		p8, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", p8), nil
	}
	caCert, caKey, caPEM, err := newCA("k8s-harness-ca")
	if err != nil {
		return nil, err
	}
	issue := func(cn string, org []string, eku x509.ExtKeyUsage, dns []string, ips []net.IP) ([]byte, []byte, error) {
		return issueBy(caCert, caKey, cn, org, eku, dns, ips)
	}
	// The aggregation layer's front proxy has its own CA, as in kubeadm clusters.
	fpCert, fpKey, fpPEM, err := newCA("k8s-harness-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	fpCrt, fpClientKey, err := issueBy(fpCert, fpKey, "front-proxy-client", nil, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, err
	}
	srvCrt, srvKey, err := issue("kube-apiserver", nil, x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")})
	if err != nil {
		return nil, err
	}
	admCrt, admKey, err := issue("k8s-harness-admin", []string{"system:masters"}, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"ca.crt": caPEM, "apiserver.crt": srvCrt, "apiserver.key": srvKey,
		"front-proxy-ca.crt": fpPEM, "front-proxy-client.crt": fpCrt, "front-proxy-client.key": fpClientKey,
		"admin.crt": admCrt, "admin.key": admKey, "sa.key": pemOf("EC PRIVATE KEY", saDER),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	return &pkiBundle{caPEM: caPEM, adminCrt: admCrt, adminKey: admKey}, nil
}

func writeKubeconfig(path, server string, b *pkiBundle) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["k8s-harness"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: b.caPEM}
	cfg.AuthInfos["k8s-harness-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: b.adminCrt, ClientKeyData: b.adminKey}
	cfg.Contexts["k8s-harness"] = &clientcmdapi.Context{Cluster: "k8s-harness", AuthInfo: "k8s-harness-admin", Namespace: "default"}
	cfg.CurrentContext = "k8s-harness"
	return clientcmd.WriteToFile(*cfg, path)
}
