package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a certificate directory, as written by GenerateDevCerts
// and read by LoadTLS.
const (
	certCAFile      = "ca.pem"
	certCAKeyFile   = "ca-key.pem"
	certNodeFile    = "node.pem"
	certNodeKeyFile = "node-key.pem"
)

// Lifetimes and clock-skew allowance of development certificates.
const (
	devCAYears        = 10
	devNodeYears      = 1
	devCertBackdating = time.Hour // tolerate nodes whose clocks run a little behind
)

// devDefaultHosts are always in a node certificate, so a development cluster
// on one machine works whichever loopback name or address a node dials.
var devDefaultHosts = []string{"127.0.0.1", "::1", "localhost", "*.localhost"}

// GenerateDevCerts writes into dir a development CA (ca.pem, ca-key.pem) and a
// node certificate and key (node.pem, node-key.pem) signed by it, so that a
// cluster can run with mutual TLS without an operator-provided PKI.
//
// The node certificate is valid for both server and client authentication,
// because every node both accepts and dials raft connections with the same
// identity. Its subject alternative names are 127.0.0.1, ::1, localhost and
// *.localhost plus hosts (each an IP address or a DNS name, without a port).
// Keys are ECDSA P-256; the CA is valid for 10 years, the node certificate for
// one year (never beyond the CA); serial numbers are random 128-bit integers.
//
// If dir already holds ca.pem and ca-key.pem, that CA is reused and only the
// node certificate is issued. Cluster membership is proven by the shared CA,
// so to build several nodes, run this once and copy the directory per node
// (every node may share one node certificate, since all of them carry the
// loopback names), or copy ca.pem and ca-key.pem into each node's directory
// and run it there with that node's hosts.
//
// An existing node.pem is never replaced unless overwrite is true; the
// refusal wraps fs.ErrExist.
//
// # Notes
//
//   - The directory is created with mode 0700 and private keys are written
//     with mode 0600 (certificates 0644). Files are replaced atomically.
//   - The CA key sits next to the node key on purpose: this is a development
//     convenience, not a production PKI. Production deployments should bring
//     their own CA and keep its key off the nodes.
func GenerateDevCerts(dir string, hosts []string, overwrite bool) error {
	dnsNames, ips, err := devCertSANs(hosts)
	if err != nil {
		return fmt.Errorf("generating dev certs: %w", err)
	}

	nodePath := filepath.Join(dir, certNodeFile)
	if !overwrite {
		switch _, err := os.Stat(nodePath); {
		case err == nil:
			return fmt.Errorf("generating dev certs: refusing to overwrite %s (reissue it with overwrite, or use another directory): %w",
				nodePath, fs.ErrExist)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("generating dev certs: checking %s: %w", nodePath, err)
		}
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("generating dev certs: creating %s: %w", dir, err)
	}

	now := time.Now()
	caCert, caKey, err := loadDevCA(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		caCert, caKey, err = newDevCA(dir, now)
		if err != nil {
			return fmt.Errorf("generating dev certs: %w", err)
		}
	case err != nil:
		return fmt.Errorf("generating dev certs: %w", err)
	}

	if err := issueDevNodeCert(dir, caCert, caKey, dnsNames, ips, now); err != nil {
		return fmt.Errorf("generating dev certs: %w", err)
	}
	return nil
}

// LoadTLS reads ca.pem, node.pem and node-key.pem from dir and returns the
// configurations for mutual TLS between cluster nodes: server for the raft
// listener, client for dialing peers. Both require TLS 1.3.
//
// The server requires a client certificate and verifies it against the CA for
// client authentication (tls.RequireAndVerifyClientCert with ClientCAs).
//
// The client presents the node certificate and verifies the server's chain
// against the CA for server authentication, but deliberately not its host
// name: nodes dial each other by IP:port (often on loopback, often behind
// addresses that change), and what makes a peer a member is a certificate
// from the cluster's CA, not a DNS name. Go's built-in verification cannot
// check a chain without also checking a name, so the client config sets
// InsecureSkipVerify and does the chain check itself in VerifyConnection,
// which crypto/tls runs on every handshake, including resumed ones, and which
// fails when the peer presents no certificate. Callers must not replace
// VerifyConnection on the returned client config.
//
// Before returning, LoadTLS checks that node.pem chains to ca.pem for both
// usages and is currently valid, so a mismatched or expired directory fails
// at startup rather than at the first handshake. Errors name the file at
// fault and say how to regenerate it.
func LoadTLS(dir string) (server, client *tls.Config, err error) {
	hint := fmt.Sprintf("run `postern cluster certs --out %s`", dir)

	caPath := filepath.Join(dir, certCAFile)
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w: %s", caPath, err, hint)
	}
	caCerts, err := parseCertsPEM(caPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w: %s", caPath, err, hint)
	}
	roots := x509.NewCertPool()
	for _, c := range caCerts {
		roots.AddCert(c)
	}

	nodePath := filepath.Join(dir, certNodeFile)
	nodePEM, err := os.ReadFile(nodePath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w: %s", nodePath, err, hint)
	}
	keyPath := filepath.Join(dir, certNodeKeyFile)
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w: %s", keyPath, err, hint)
	}
	pair, err := tls.X509KeyPair(nodePEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("loading key pair %s and %s: %w: %s with overwrite to reissue them",
			nodePath, keyPath, err, hint)
	}
	chain, err := certChain(pair)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w: %s with overwrite to reissue it", nodePath, err, hint)
	}
	now := time.Now()
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if err := verifyClusterChain(chain, roots, usage, now); err != nil {
			return nil, nil, fmt.Errorf("checking %s against %s: %w: %s with overwrite to reissue it from this CA",
				nodePath, caPath, err, hint)
		}
	}

	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
		// Belt and braces: should ClientAuth ever be loosened, a peer that
		// skipped verification still cannot get in.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || len(cs.VerifiedChains) == 0 {
				return errors.New("verifying cluster peer: no verified client certificate")
			}
			return nil
		},
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		// Not consulted while InsecureSkipVerify is set; kept so that a caller
		// who clones this config, sets ServerName and turns hostname checking
		// back on verifies against the same CA.
		RootCAs: roots,
		// Skips only crypto/tls's built-in chain+hostname check; the chain is
		// verified in VerifyConnection below. See the LoadTLS doc comment.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := verifyClusterChain(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth, time.Now()); err != nil {
				return fmt.Errorf("verifying cluster peer: %w", err)
			}
			return nil
		},
	}
	return server, client, nil
}

// verifyClusterChain checks that chain[0] is issued, possibly through
// chain[1:], by a certificate in roots, is valid at now and allows usage.
// Host names are not checked: see LoadTLS. An empty chain is an error, so a
// peer cannot bypass the check by presenting nothing.
func verifyClusterChain(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("peer presented no certificate")
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	return err
}

// certChain parses the certificates of a key pair, leaf first.
func certChain(pair tls.Certificate) ([]*x509.Certificate, error) {
	chain := make([]*x509.Certificate, 0, len(pair.Certificate))
	for _, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no certificate")
	}
	return chain, nil
}

// parseCertsPEM parses every CERTIFICATE block in data and fails if there is
// none, so an empty or mistyped file is reported instead of yielding an empty
// trust pool.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}

// loadDevCA reads the CA certificate and key from dir. It returns an error
// wrapping fs.ErrNotExist only if both files are absent; one without the
// other is reported rather than silently replaced, because a new CA would
// split the cluster.
func loadDevCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath := filepath.Join(dir, certCAFile)
	keyPath := filepath.Join(dir, certCAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("no CA in %s: %w", dir, fs.ErrNotExist)
	case errors.Is(certErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("found %s but not %s: copy both from the directory that holds the cluster CA, or remove %s to create a new CA",
			keyPath, certPath, keyPath)
	case errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("found %s but not %s: copy both from the directory that holds the cluster CA, or remove %s to create a new CA",
			certPath, keyPath, certPath)
	case certErr != nil:
		return nil, nil, fmt.Errorf("reading %s: %w", certPath, certErr)
	case keyErr != nil:
		return nil, nil, fmt.Errorf("reading %s: %w", keyPath, keyErr)
	}

	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", certPath, err)
	}
	caCert := certs[0]
	if !caCert.IsCA || caCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("parsing %s: not a CA certificate", certPath)
	}
	if time.Now().After(caCert.NotAfter) {
		return nil, nil, fmt.Errorf("using %s: CA expired on %s: remove %s and %s to create a new CA",
			certPath, caCert.NotAfter.Format(time.DateOnly), certPath, keyPath)
	}
	caKey, err := parseCAKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", keyPath, err)
	}
	pub, ok := caKey.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(caCert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not match %s", keyPath, certPath)
	}
	return caCert, caKey, nil
}

// parseCAKeyPEM accepts PKCS #8 (what this file writes) and SEC 1 EC
// keys, so a CA made with openssl can be reused.
func parseCAKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

// newDevCA creates a self-signed CA and writes it to dir, key first, so that
// an interrupted run leaves a state loadDevCA reports instead of a
// certificate without its key.
func newDevCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Postern (development only)"},
			CommonName:   "Postern development CA",
		},
		NotBefore:             now.Add(-devCertBackdating),
		NotAfter:              now.AddDate(devCAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // signs node certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing new CA certificate: %w", err)
	}
	if err := writeKeyPEM(filepath.Join(dir, certCAKeyFile), key); err != nil {
		return nil, nil, err
	}
	if err := writeCertPEM(filepath.Join(dir, certCAFile), der); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// issueDevNodeCert issues a server+client certificate for the given names,
// signed by the CA, and writes it to dir, key first (node.pem is what marks
// the directory as holding a node identity).
func issueDevNodeCert(dir string, caCert *x509.Certificate, caKey crypto.Signer, dnsNames []string, ips []net.IP, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating node key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return fmt.Errorf("generating node serial: %w", err)
	}
	notAfter := now.AddDate(devNodeYears, 0, 0)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Postern (development only)"},
			CommonName:   "postern node",
		},
		NotBefore:             now.Add(-devCertBackdating),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return fmt.Errorf("creating node certificate: %w", err)
	}
	if err := writeKeyPEM(filepath.Join(dir, certNodeKeyFile), key); err != nil {
		return err
	}
	return writeCertPEM(filepath.Join(dir, certNodeFile), der)
}

// devCertSANs splits the default and extra hosts into DNS names and IP
// addresses, dropping duplicates. A bracketed IPv6 literal is accepted; a
// host with a port is not, since a certificate names hosts, not endpoints.
func devCertSANs(hosts []string) ([]string, []net.IP, error) {
	var dnsNames []string
	var ips []net.IP
	seen := make(map[string]bool)
	for _, h := range append(append([]string(nil), devDefaultHosts...), hosts...) {
		h = strings.TrimSpace(h)
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
		if ip := net.ParseIP(h); ip != nil {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		if !validCertDNSName(h) {
			return nil, nil, fmt.Errorf("invalid host %q: want an IP address or a DNS name, without a port", h)
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !seen[h] {
			seen[h] = true
			dnsNames = append(dnsNames, h)
		}
	}
	return dnsNames, ips, nil
}

// validCertDNSName reports whether name is a host name fit for a
// certificate: dot-separated labels of letters, digits, '-' and '_', with an
// optional leading "*." wildcard label.
func validCertDNSName(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for i, label := range strings.Split(name, ".") {
		if label == "*" && i == 0 && strings.Contains(name, ".") {
			continue
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			default:
				return false
			}
		}
	}
	return true
}

// randomSerial returns a uniformly random, positive 128-bit serial number, as
// RFC 5280 section 4.1.2.2 asks (positive, at most 20 octets).
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func writeCertPEM(path string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return writeCertFileAtomic(path, data, 0o644)
}

func writeKeyPEM(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeCertFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeCertFileAtomic writes data to a temporary file in the same directory and
// renames it over path. Unlike os.WriteFile, the resulting mode is perm even
// when path already existed with looser permissions, and a reader never sees
// a half-written key.
func writeCertFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
