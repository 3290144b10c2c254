// Package flows will hold the journeys — sign-up, sign-in, email verification, one-time passcodes,
// password reset, MFA — as deterministic step functions: (state, input, clock) → (state, effects), with
// the edge performing the effects. It arrives with the OpenID Connect provider; today the directory holds
// the flow configuration (Settings) the journeys will read.
package flows
