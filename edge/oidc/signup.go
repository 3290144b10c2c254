package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/pages"
	"postern.dev/postern/flows"
)

// codeTTL is how long an emailed sign-up code is good for.
const codeTTL = 10 * time.Minute

// signUp shows (GET) and handles (POST) the sign-up page of a journey: the tenant's attributes, then, when
// the tenant verifies email, a code by mail before the account exists.
func (p *Provider) signUp(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	j := string(ctx.QueryArgs().Peek("j"))
	r, ok := p.openJourney(te.tenant.ID, j)
	if !ok {
		p.errorPage(ctx, te, fasthttp.StatusBadRequest, "journey_expired", "")
		return
	}
	cfg := te.tenant.Settings.SignUp
	locale := pages.Negotiate(r.UILocales, string(ctx.Request.Header.Peek("Accept-Language")), te.tenant.DefaultLocale)
	binding := p.csrfBinding(ctx, te)
	iss := p.issuer(te.tenant.ID)
	page := pages.Page{Kind: pages.KindSignUp, Locale: locale, Tenant: te.tenant.ID, Branding: te.tenant.Settings.Branding,
		Action: iss + pathSignUp + "?j=" + url.QueryEscape(j), Email: r.LoginHint,
		Fields: pages.AttributeFields(cfg.Attributes, nil, nil),
		Links:  map[string]string{"sign_in": iss + pathSignIn + "?j=" + url.QueryEscape(j)}}
	if !ctx.IsPost() {
		// OnAttributeCollectionStart: prefill the form, or block the sign-up before it starts.
		if exts, err := p.extensionsFor(te, flows.EventAttributeCollectionStart); err != nil {
			p.extensionFailed(ctx, te, r.UILocales, err)
			return
		} else if len(exts) > 0 {
			c, cancel := extensionContext()
			d, err := p.cfg.Extensions.AttributeCollectionStart(c, exts, flows.AttributeCollectionStartInput{
				EventContext: p.eventContext(ctx, te, r.ClientID, locale), Flow: cfg,
				SignUp: flows.SignUpInput{Email: r.LoginHint, Attributes: map[string]string{}}})
			cancel()
			switch {
			case err != nil:
				p.extensionFailed(ctx, te, r.UILocales, err)
				return
			case d.Block != nil:
				p.blockPage(ctx, te, r.UILocales, d.Block)
				return
			}
			page.Fields = pages.AttributeFields(cfg.Attributes, d.Prefill, nil)
		}
		p.renderPage(ctx, te, page, binding, r)
		return
	}
	args := ctx.PostArgs()
	if !p.csrf.Check(string(args.Peek(pages.FieldCSRF)), binding, p.cfg.Now(), journeyLifetime) {
		page.FormErrorID = "csrf"
		p.renderPage(ctx, te, page, binding, r)
		return
	}
	in := flows.SignUpInput{Email: string(args.Peek(pages.FieldEmail)), Attributes: map[string]string{}}
	for _, def := range cfg.Attributes {
		in.Attributes[def.Name] = string(args.Peek(def.Name))
	}
	res := flows.ValidateSignUp(cfg, in)
	password := string(args.Peek(pages.FieldPassword))
	page.Email = in.Email
	page.Fields = pages.AttributeFields(cfg.Attributes, in.Attributes, res.Errors)
	page.EmailError = res.Errors["email"]
	page.PasswordError = pages.CheckPassword(password, in.Email)
	if !res.OK() || page.PasswordError != "" {
		p.renderPage(ctx, te, page, binding, r)
		return
	}
	// OnAttributeCollectionSubmit: the tenant's own checks on what the form accepted.
	if exts, err := p.extensionsFor(te, flows.EventAttributeCollectionSubmit); err != nil {
		p.extensionFailed(ctx, te, r.UILocales, err)
		return
	} else if len(exts) > 0 {
		c, cancel := extensionContext()
		d, err := p.cfg.Extensions.AttributeCollectionSubmit(c, exts, flows.AttributeCollectionSubmitInput{
			EventContext: p.eventContext(ctx, te, r.ClientID, locale), Flow: cfg, SignUp: in})
		cancel()
		switch {
		case err != nil:
			p.extensionFailed(ctx, te, r.UILocales, err)
			return
		case d.Block != nil:
			p.blockPage(ctx, te, r.UILocales, d.Block)
			return
		case !d.OK():
			page.Fields = pages.AttributeFields(cfg.Attributes, in.Attributes, d.FieldErrors)
			page.EmailError = d.FieldErrors["email"]
			page.FormError = d.Message
			p.renderPage(ctx, te, page, binding, r)
			return
		}
		if len(d.Modify) > 0 {
			for k, v := range d.Modify {
				in.Attributes[k] = v
			}
			// The parser checked each value against its attribute; validating again turns the form's
			// strings into the profile and typed attributes the user record keeps.
			if res = flows.ValidateSignUp(cfg, in); !res.OK() {
				p.extensionFailed(ctx, te, r.UILocales, fmt.Errorf("the values an extension set do not validate: %v", res.Errors))
				return
			}
		}
	}
	hash, err := directory.HashPassword(password)
	if err != nil {
		p.failPage(ctx, te, r, page, binding, err)
		return
	}
	user := directory.User{ID: directory.NewID(), Tenant: te.tenant.ID, Email: res.Email, PasswordHash: hash,
		Profile: res.Profile, Attributes: res.Attributes}
	if !cfg.EmailVerification {
		sess, secret := p.newSession(te, user.ID, []string{"pwd"})
		res, err := p.propose(directory.MakeOp(directory.OpUserCreate, user), directory.MakeOp(directory.OpSessionPut, sess))
		if err != nil {
			if de, ok := directory.AsError(err); ok && de.Code == directory.CodeConflict {
				page.EmailError = "email_taken"
				p.renderPage(ctx, te, page, binding, r)
				return
			}
			p.failPage(ctx, te, r, page, binding, err)
			return
		}
		p.writeSessionCookie(ctx, te.tenant.ID, sessionCookie{ID: sess.ID, Secret: secret, Seen: sess.CreatedAt, Index: res.Index})
		p.issueCode(ctx, te, r, sess, res.Index)
		return
	}
	code := oneTimeCode()
	pending := directory.PendingSignUp{ID: directory.NewID(), Tenant: te.tenant.ID, User: user, ExpiresAt: p.cfg.Now().Add(codeTTL)}
	pending.CodeHash = p.codeHash(te.tenant.ID, pending.ID, code)
	if _, err := p.propose(directory.MakeOp(directory.OpSignUpStart, pending)); err != nil {
		p.failPage(ctx, te, r, page, binding, err)
		return
	}
	// OnOtpSend: an extension may deliver the code its own way; otherwise (or if it does not) Postern mails it.
	if exts, err := p.extensionsFor(te, flows.EventOtpSend); err != nil {
		p.extensionFailed(ctx, te, r.UILocales, err)
		return
	} else if len(exts) > 0 {
		c, cancel := extensionContext()
		d, err := p.cfg.Extensions.OtpSend(c, exts, flows.OtpSendInput{EventContext: p.eventContext(ctx, te, r.ClientID, locale),
			RequestType: flows.OtpSignUp, Email: res.Email, Code: code})
		cancel()
		if err != nil {
			p.extensionFailed(ctx, te, r.UILocales, err)
			return
		}
		if d.Delivered {
			redirect(ctx, iss+pathVerify+"?j="+url.QueryEscape(j)+"&p="+url.QueryEscape(pending.ID), fasthttp.StatusSeeOther)
			return
		}
	}
	if p.cfg.Mail == nil {
		p.failPage(ctx, te, r, page, binding, fmt.Errorf("email verification is on but no mail sender is configured"))
		return
	}
	mctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	name := te.tenant.Settings.Branding.CompanyName
	if name == "" {
		name = te.tenant.DisplayName
	}
	subject := fmt.Sprintf("%s: your verification code is %s", name, code)
	text := fmt.Sprintf("Your verification code for %s is:\n\n    %s\n\nIt expires in %d minutes. If you did not try to sign up, ignore this message.\n",
		name, code, int(codeTTL.Minutes()))
	if err := p.cfg.Mail(mctx, te.tenant.ID, res.Email, subject, text); err != nil {
		p.failPage(ctx, te, r, page, binding, fmt.Errorf("sending the sign-up code: %w", err))
		return
	}
	redirect(ctx, iss+pathVerify+"?j="+url.QueryEscape(j)+"&p="+url.QueryEscape(pending.ID), fasthttp.StatusSeeOther)
}

// verify shows (GET) and checks (POST) the emailed code of a pending sign-up.
func (p *Provider) verify(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	j := string(ctx.QueryArgs().Peek("j"))
	pid := string(ctx.QueryArgs().Peek("p"))
	r, ok := p.openJourney(te.tenant.ID, j)
	if !ok || pid == "" {
		p.errorPage(ctx, te, fasthttp.StatusBadRequest, "journey_expired", "")
		return
	}
	pending, err := fresh(p, func() (directory.PendingSignUp, error) { return p.cfg.Store.PendingSignUp(te.tenant.ID, pid) })
	if err != nil {
		p.errorPage(ctx, te, fasthttp.StatusBadRequest, "journey_expired", r.UILocales)
		return
	}
	locale := pages.Negotiate(r.UILocales, string(ctx.Request.Header.Peek("Accept-Language")), te.tenant.DefaultLocale)
	binding := p.csrfBinding(ctx, te)
	iss := p.issuer(te.tenant.ID)
	page := pages.Page{Kind: pages.KindVerifyCode, Locale: locale, Tenant: te.tenant.ID, Branding: te.tenant.Settings.Branding,
		Action: iss + pathVerify + "?j=" + url.QueryEscape(j) + "&p=" + url.QueryEscape(pid), Email: pending.User.Email}
	if !ctx.IsPost() {
		p.renderPage(ctx, te, page, binding, r)
		return
	}
	args := ctx.PostArgs()
	if !p.csrf.Check(string(args.Peek(pages.FieldCSRF)), binding, p.cfg.Now(), journeyLifetime) {
		page.FormErrorID = "csrf"
		p.renderPage(ctx, te, page, binding, r)
		return
	}
	code := string(args.Peek(pages.FieldCode))
	sess, secret := p.newSession(te, pending.User.ID, []string{"pwd", "otp"})
	res, err := p.propose(directory.MakeOp(directory.OpSignUpComplete, directory.SignUpComplete{Tenant: te.tenant.ID, ID: pid,
		CodeHash: p.codeHash(te.tenant.ID, pid, code), Session: sess}))
	if err != nil {
		p.failPage(ctx, te, r, page, binding, err)
		return
	}
	var out directory.SignUpOutcome
	if err := json.Unmarshal(res.Outputs[0], &out); err != nil {
		p.failPage(ctx, te, r, page, binding, err)
		return
	}
	switch out.Result {
	case directory.SignUpDone:
		p.writeSessionCookie(ctx, te.tenant.ID, sessionCookie{ID: sess.ID, Secret: secret, Seen: sess.CreatedAt, Index: res.Index})
		p.issueCode(ctx, te, r, sess, res.Index)
	case directory.SignUpWrongCode:
		page.CodeError = "code_invalid"
		p.renderPage(ctx, te, page, binding, r)
	default: // expired, too many attempts, email taken meanwhile, gone
		p.errorPage(ctx, te, fasthttp.StatusBadRequest, out.Result, r.UILocales)
	}
}

// failPage shows the form again with a generic error, logging the cause with a correlation id.
func (p *Provider) failPage(ctx *fasthttp.RequestCtx, te *tenantEntry, r authRequest, page pages.Page, binding string, err error) {
	id := directory.NewID()[:12]
	p.cfg.Log.Error("journey step failed", "tenant", te.tenant.ID, "page", page.Kind, "correlation_id", id, "error", err)
	page.FormErrorID = "generic_error"
	page.CorrelationID = id
	p.renderPage(ctx, te, page, binding, r)
}

// oneTimeCode is 6 random digits (CONTRACT.md: 6 to 8).
func oneTimeCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic("oidc: crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// codeHash keys the hash with a KEK-derived key, so a copy of the directory does not reveal codes.
func (p *Provider) codeHash(tenant, pendingID, code string) string {
	m := hmac.New(sha256.New, p.codeKey)
	m.Write([]byte(tenant + "\x00" + pendingID + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}
