package mail_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"time"

	postmail "postern.dev/postern/edge/mail"
)

func ExampleCompose() {
	msg, err := postmail.Compose("Acme Shop <no-reply@acme.example>", postmail.Message{
		To:      "ada@example.com",
		Subject: "Vérifiez votre adresse",
		Text:    "Votre code : 482915",
	}, time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}

	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Subject:", m.Header.Get("Subject"))
	subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	fmt.Println("decoded:", subject)
	fmt.Println("Content-Type:", m.Header.Get("Content-Type"))
	text, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
	fmt.Printf("text: %q\n", text)
	// Output:
	// Subject: =?utf-8?q?V=C3=A9rifiez_votre_adresse?=
	// decoded: Vérifiez votre adresse
	// Content-Type: text/plain; charset=utf-8
	// text: "Votre code : 482915\r\n"
}

func ExampleNewSMTP() {
	sender, err := postmail.NewSMTP(postmail.SMTPConfig{
		Addr:     "smtp.example.com:587",
		From:     "Acme Shop <no-reply@acme.example>",
		TLS:      postmail.TLSStartTLS,
		Username: "postern",
		Password: os.Getenv("SMTP_PASSWORD"),
	})
	if err != nil {
		log.Fatal(err)
	}
	err = sender.Send(context.Background(), postmail.Message{
		To: "ada@example.com", Subject: "Your code", Text: "Your code is 482915.", Tenant: "acme",
	})
	if err != nil {
		log.Print(err)
	}
}

func ExampleNewOutbox() {
	dir, err := os.MkdirTemp("", "postern-dev")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	outbox, err := postmail.NewOutbox(dir, slog.Default())
	if err != nil {
		log.Fatal(err)
	}
	err = outbox.Send(context.Background(), postmail.Message{
		To: "ada@example.com", Subject: "Your code", Text: "Your code is 482915.", Tenant: "acme",
	})
	if err != nil {
		log.Fatal(err)
	}
	files, _ := os.ReadDir(outbox.Dir())
	fmt.Println(len(files), "message in", "DIR/outbox")
	// Output: 1 message in DIR/outbox
}
