// Package admin is the operators' API on the admin listener: JSON CRUD for tenants, apps, users and
// groups, whole-manifest apply, cluster membership, backup and restore, health and metrics.
//
// Every route is in one table (routes), and the OpenAPI document served at /admin/v1/openapi.json is
// checked against that table by a test, so the document cannot silently fall behind the handlers.
// Handlers return errors; one function (writeError) turns them into the JSON error body, so directory
// and cluster error text that is not meant for clients never reaches them.
package admin
