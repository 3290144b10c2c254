package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGenerateDevCertsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateDevCerts(dir, []string{"node1.internal", "10.1.2.3"}, false); err != nil {
		t.Fatal(err)
	}
	server, client, err := LoadTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if server.MinVersion != tls.VersionTLS13 || client.MinVersion != tls.VersionTLS13 {
		t.Errorf("MinVersion = %#x/%#x, want TLS 1.3", server.MinVersion, client.MinVersion)
	}
	if server.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("server ClientAuth = %v, want RequireAndVerifyClientCert", server.ClientAuth)
	}
	if srvErr, cliErr := certTestExchange(t, server, client); srvErr != nil || cliErr != nil {
		t.Fatalf("exchange: server error %v, client error %v", srvErr, cliErr)
	}

	ca := certTestReadCert(t, filepath.Join(dir, certCAFile))
	node := certTestReadCert(t, filepath.Join(dir, certNodeFile))
	for _, c := range []struct {
		name string
		cert *x509.Certificate
		life time.Duration
	}{
		{"ca", ca, 10 * 365 * 24 * time.Hour},
		{"node", node, 365 * 24 * time.Hour},
	} {
		if got := c.cert.NotAfter.Sub(c.cert.NotBefore); got < c.life || got > c.life+4*24*time.Hour {
			t.Errorf("%s lifetime = %v, want about %v", c.name, got, c.life)
		}
		if _, ok := c.cert.PublicKey.(*ecdsa.PublicKey); !ok || c.cert.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("%s key is %T, want ECDSA", c.name, c.cert.PublicKey)
		} else if curve := c.cert.PublicKey.(*ecdsa.PublicKey).Curve; curve != elliptic.P256() {
			t.Errorf("%s curve = %s, want P-256", c.name, curve.Params().Name)
		}
		if c.cert.SerialNumber.Sign() <= 0 || c.cert.SerialNumber.BitLen() > 128 {
			t.Errorf("%s serial %v is not a positive 128-bit integer", c.name, c.cert.SerialNumber)
		}
	}
	if !ca.IsCA {
		t.Error("ca.pem is not a CA")
	}
	if ca.SerialNumber.Cmp(node.SerialNumber) == 0 {
		t.Error("CA and node share a serial number")
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(node.ExtKeyUsage, usage) {
			t.Errorf("node ExtKeyUsage %v lacks %v", node.ExtKeyUsage, usage)
		}
	}
	for _, name := range []string{"localhost", "*.localhost", "node1.internal"} {
		if !slices.Contains(node.DNSNames, name) {
			t.Errorf("node DNSNames %v lack %q", node.DNSNames, name)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
		if !slices.ContainsFunc(node.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("node IPAddresses %v lack %s", node.IPAddresses, ip)
		}
	}
}

// TestLoadTLSRefusesForeignPeers checks that each side refuses a peer whose
// certificate does not come from the cluster CA with the right usage. Each
// case isolates one side's check: the other side is built to accept anything.
func TestLoadTLSRefusesForeignPeers(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateDevCerts(dir, nil, false); err != nil {
		t.Fatal(err)
	}
	server, client, err := LoadTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	caCert, caKey, err := loadDevCA(dir)
	if err != nil {
		t.Fatal(err)
	}

	otherDir := t.TempDir()
	if err := GenerateDevCerts(otherDir, nil, false); err != nil {
		t.Fatal(err)
	}
	otherPair, err := tls.LoadX509KeyPair(filepath.Join(otherDir, certNodeFile), filepath.Join(otherDir, certNodeKeyFile))
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	serverOnly := certTestIssue(t, caCert, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, now.Add(-time.Hour), now.Add(time.Hour))
	clientOnly := certTestIssue(t, caCert, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, now.Add(-time.Hour), now.Add(time.Hour))
	expired := certTestIssue(t, caCert, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		now.Add(-2*time.Hour), now.Add(-time.Hour))

	// anyServer presents cert and asks nothing of the client.
	anyServer := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	}
	// anyClient trusts any server and always presents cert, even one the
	// server's CertificateRequest did not ask for (nil: presents nothing).
	anyClient := func(cert *tls.Certificate) *tls.Config {
		return &tls.Config{
			MinVersion:         tls.VersionTLS13,
			InsecureSkipVerify: true, // this test client must not be the side that refuses
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if cert == nil {
					return &tls.Certificate{}, nil
				}
				return cert, nil
			},
		}
	}

	tests := []struct {
		name        string
		server      *tls.Config
		client      *tls.Config
		refusedBy   string // "server" or "client"
		wantErrText string
	}{
		{"client cert from another CA", server, anyClient(&otherPair), "server", "unknown authority"},
		{"client without certificate", server, anyClient(nil), "server", "certificate"},
		{"client cert without client auth usage", server, anyClient(&serverOnly), "server", "key usage"},
		{"expired client cert", server, anyClient(&expired), "server", "expired"},
		{"server cert from another CA", anyServer(otherPair), client, "client", "unknown authority"},
		{"server cert without server auth usage", anyServer(clientOnly), client, "client", "key usage"},
		{"expired server cert", anyServer(expired), client, "client", "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srvErr, cliErr := certTestExchange(t, tt.server, tt.client)
			if srvErr == nil || cliErr == nil {
				t.Fatalf("connection not refused: server error %v, client error %v", srvErr, cliErr)
			}
			refuser := srvErr
			if tt.refusedBy == "client" {
				refuser = cliErr
			}
			if !strings.Contains(refuser.Error(), tt.wantErrText) {
				t.Errorf("%s error = %q, want it to mention %q", tt.refusedBy, refuser, tt.wantErrText)
			}
		})
	}
}

// TestLoadTLSVerifyConnectionRequiresCertificate pins that the custom check
// fails closed: a handshake state without peer certificates is an error, not
// a pass, on either side.
func TestLoadTLSVerifyConnectionRequiresCertificate(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateDevCerts(dir, nil, false); err != nil {
		t.Fatal(err)
	}
	server, client, err := LoadTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*tls.Config{"server": server, "client": client} {
		if cfg.VerifyConnection == nil {
			t.Fatalf("%s config has no VerifyConnection", name)
		}
		if err := cfg.VerifyConnection(tls.ConnectionState{}); err == nil {
			t.Errorf("%s VerifyConnection accepted a peer without certificates", name)
		}
	}
	// A certificate that merely exists is not enough either.
	other := t.TempDir()
	if err := GenerateDevCerts(other, nil, false); err != nil {
		t.Fatal(err)
	}
	foreign := certTestReadCert(t, filepath.Join(other, certNodeFile))
	if err := client.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{foreign}}); err == nil {
		t.Error("client VerifyConnection accepted a certificate from another CA")
	}
}

func TestGenerateDevCertsFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX file modes")
	}
	dir := filepath.Join(t.TempDir(), "nested", "certs")
	if err := GenerateDevCerts(dir, nil, false); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		"":              0o700 | fs.ModeDir,
		certCAKeyFile:   0o600,
		certNodeKeyFile: 0o600,
		certCAFile:      0o644,
		certNodeFile:    0o644,
	}
	check := func() {
		t.Helper()
		for name, mode := range want {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != mode {
				t.Errorf("mode of %q = %v, want %v", name, fi.Mode(), mode)
			}
		}
	}
	check()

	// Reissuing tightens a key whose mode someone loosened.
	if err := os.Chmod(filepath.Join(dir, certNodeKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := GenerateDevCerts(dir, nil, true); err != nil {
		t.Fatal(err)
	}
	check()

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Errorf("dir holds %d entries, want 4 (temporary files left behind?)", len(entries))
	}
}

func TestGenerateDevCertsReusesCA(t *testing.T) {
	first := t.TempDir()
	if err := GenerateDevCerts(first, []string{"node1.internal"}, false); err != nil {
		t.Fatal(err)
	}
	second := t.TempDir()
	for _, name := range []string{certCAFile, certCAKeyFile} {
		certTestCopy(t, filepath.Join(first, name), filepath.Join(second, name))
	}
	if err := GenerateDevCerts(second, []string{"node2.internal", "10.0.0.2"}, false); err != nil {
		t.Fatal(err)
	}

	caPEM1, _ := os.ReadFile(filepath.Join(first, certCAFile))
	caPEM2, _ := os.ReadFile(filepath.Join(second, certCAFile))
	if !bytes.Equal(caPEM1, caPEM2) {
		t.Fatal("ca.pem was rewritten although a CA was present")
	}
	roots := x509.NewCertPool()
	roots.AddCert(certTestReadCert(t, filepath.Join(first, certCAFile)))
	node2 := certTestReadCert(t, filepath.Join(second, certNodeFile))
	if _, err := node2.Verify(x509.VerifyOptions{Roots: roots, DNSName: "node2.internal"}); err != nil {
		t.Fatalf("second node certificate does not verify against the first CA: %v", err)
	}
	node1 := certTestReadCert(t, filepath.Join(first, certNodeFile))
	if node1.SerialNumber.Cmp(node2.SerialNumber) == 0 {
		t.Error("two nodes got the same serial number")
	}

	server1, client1, err := LoadTLS(first)
	if err != nil {
		t.Fatal(err)
	}
	server2, client2, err := LoadTLS(second)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name           string
		server, client *tls.Config
	}{
		{"node2 dials node1", server1, client2},
		{"node1 dials node2", server2, client1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if srvErr, cliErr := certTestExchange(t, tt.server, tt.client); srvErr != nil || cliErr != nil {
				t.Fatalf("exchange: server error %v, client error %v", srvErr, cliErr)
			}
		})
	}
}

func TestGenerateDevCertsOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateDevCerts(dir, nil, false); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ca, node, key := read(certCAFile), read(certNodeFile), read(certNodeKeyFile)

	err := GenerateDevCerts(dir, []string{"other.internal"}, false)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), certNodeFile) {
		t.Fatalf("second run without overwrite: err = %v, want an fs.ErrExist naming %s", err, certNodeFile)
	}
	if !bytes.Equal(read(certNodeFile), node) || !bytes.Equal(read(certNodeKeyFile), key) {
		t.Fatal("refused run still changed the node files")
	}

	if err := GenerateDevCerts(dir, []string{"other.internal"}, true); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(read(certNodeFile), node) || bytes.Equal(read(certNodeKeyFile), key) {
		t.Error("overwrite did not reissue the node certificate and key")
	}
	if !bytes.Equal(read(certCAFile), ca) {
		t.Error("overwrite replaced the CA")
	}
	if _, _, err := LoadTLS(dir); err != nil {
		t.Fatalf("reissued directory does not load: %v", err)
	}
}

func TestGenerateDevCertsRejectsBadInput(t *testing.T) {
	foreign := t.TempDir()
	if err := GenerateDevCerts(foreign, nil, false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		hosts   []string
		setup   func(t *testing.T, dir string)
		wantErr string
	}{
		{name: "empty host", hosts: []string{""}, wantErr: "invalid host"},
		{name: "host with port", hosts: []string{"node1:7000"}, wantErr: "invalid host"},
		{name: "IP with port", hosts: []string{"10.0.0.1:7000"}, wantErr: "invalid host"},
		{name: "space in name", hosts: []string{"node 1"}, wantErr: "invalid host"},
		{name: "bare wildcard", hosts: []string{"*"}, wantErr: "invalid host"},
		{
			name: "CA certificate without key",
			setup: func(t *testing.T, dir string) {
				certTestCopy(t, filepath.Join(foreign, certCAFile), filepath.Join(dir, certCAFile))
			},
			wantErr: certCAKeyFile,
		},
		{
			name: "CA key without certificate",
			setup: func(t *testing.T, dir string) {
				certTestCopy(t, filepath.Join(foreign, certCAKeyFile), filepath.Join(dir, certCAKeyFile))
			},
			wantErr: certCAFile,
		},
		{
			name: "CA key from another CA",
			setup: func(t *testing.T, dir string) {
				if err := GenerateDevCerts(dir, nil, false); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(dir, certNodeFile)); err != nil {
					t.Fatal(err)
				}
				certTestCopy(t, filepath.Join(foreign, certNodeKeyFile), filepath.Join(dir, certCAKeyFile))
			},
			wantErr: "does not match",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			err := GenerateDevCerts(dir, tt.hosts, false)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if _, err := os.Stat(filepath.Join(dir, certNodeFile)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("failed run left %s behind (stat err %v)", certNodeFile, err)
			}
		})
	}
}

func TestGenerateDevCertsAcceptsBracketedIPv6(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateDevCerts(dir, []string{"[fd00::7]", "Node1.Example.", "node1.example"}, false); err != nil {
		t.Fatal(err)
	}
	node := certTestReadCert(t, filepath.Join(dir, certNodeFile))
	if !slices.ContainsFunc(node.IPAddresses, net.ParseIP("fd00::7").Equal) {
		t.Errorf("IPAddresses %v lack fd00::7", node.IPAddresses)
	}
	var n int
	for _, name := range node.DNSNames {
		if name == "node1.example" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("DNSNames %v: want node1.example exactly once", node.DNSNames)
	}
}

func TestLoadTLSErrors(t *testing.T) {
	foreign := t.TempDir()
	if err := GenerateDevCerts(foreign, nil, false); err != nil {
		t.Fatal(err)
	}
	const hint = "postern cluster certs --out"
	tests := []struct {
		name     string
		mutate   func(t *testing.T, dir string)
		wantFile string
		wantText string
	}{
		{"missing ca.pem", certTestRemove(certCAFile), certCAFile, hint},
		{"missing node.pem", certTestRemove(certNodeFile), certNodeFile, hint},
		{"missing node-key.pem", certTestRemove(certNodeKeyFile), certNodeKeyFile, hint},
		{"garbage ca.pem", certTestWrite(certCAFile, "not a certificate\n"), certCAFile, "no PEM CERTIFICATE"},
		{"garbage node.pem", certTestWrite(certNodeFile, "not a certificate\n"), certNodeFile, hint},
		{"key from another node", certTestCopyFrom(foreign, certNodeKeyFile), certNodeKeyFile, "does not match"},
		{"node from another CA", func(t *testing.T, dir string) {
			certTestCopyFrom(foreign, certNodeFile)(t, dir)
			certTestCopyFrom(foreign, certNodeKeyFile)(t, dir)
		}, certNodeFile, "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := GenerateDevCerts(dir, nil, false); err != nil {
				t.Fatal(err)
			}
			tt.mutate(t, dir)
			server, client, err := LoadTLS(dir)
			if err == nil {
				t.Fatal("LoadTLS succeeded")
			}
			if server != nil || client != nil {
				t.Error("LoadTLS returned configs with an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, filepath.Join(dir, tt.wantFile)) || !strings.Contains(msg, tt.wantText) || !strings.Contains(msg, hint) {
				t.Errorf("err = %q, want it to name %s, mention %q and say %q", msg, tt.wantFile, tt.wantText, hint)
			}
		})
	}
}

// ExampleGenerateDevCerts shows the development setup: one directory with a
// CA and a node certificate, loaded into mutual TLS configs.
func ExampleGenerateDevCerts() {
	dir, err := os.MkdirTemp("", "postern-certs-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	if err := GenerateDevCerts(dir, []string{"node1.internal", "10.0.0.1"}, false); err != nil {
		fmt.Println(err)
		return
	}
	server, client, err := LoadTLS(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(server.ClientAuth == tls.RequireAndVerifyClientCert)
	fmt.Println(client.MinVersion == tls.VersionTLS13)
	// Output:
	// true
	// true
}

// certTestExchange accepts one connection with serverCfg on loopback, dials
// it with clientCfg and has the client send "ping" and the server answer
// "pong". It returns each side's first error; both nil means the exchange
// succeeded. Deadlines bound every step, so a refused peer cannot hang it.
func certTestExchange(t *testing.T, serverCfg, clientCfg *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	served := make(chan error, 1)
	go func() {
		served <- func() error {
			conn, err := ln.Accept()
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := conn.SetDeadline(deadline); err != nil {
				return err
			}
			if err := conn.(*tls.Conn).Handshake(); err != nil {
				return err
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(conn, buf); err != nil {
				return err
			}
			if string(buf) != "ping" {
				return fmt.Errorf("server read %q, want ping", buf)
			}
			_, err = conn.Write([]byte("pong"))
			return err
		}()
	}()

	clientErr = func() error {
		conn, err := tls.DialWithDialer(&net.Dialer{Deadline: deadline}, "tcp", ln.Addr().String(), clientCfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := conn.SetDeadline(deadline); err != nil {
			return err
		}
		if _, err := conn.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil {
			return err
		}
		if string(buf) != "pong" {
			return fmt.Errorf("client read %q, want pong", buf)
		}
		return nil
	}()
	return <-served, clientErr
}

// certTestIssue issues a certificate for 127.0.0.1 from the given CA with
// the given usages and validity, for peers the cluster must refuse.
func certTestIssue(t *testing.T, ca *x509.Certificate, caKey any, usages []x509.ExtKeyUsage, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := randomSerial()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "test peer"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func certTestReadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCertsPEM(data)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return certs[0]
}

func certTestCopy(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func certTestRemove(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func certTestWrite(name, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func certTestCopyFrom(srcDir, name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		certTestCopy(t, filepath.Join(srcDir, name), filepath.Join(dir, name))
	}
}
