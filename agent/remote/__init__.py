"""Managed SageMaker jobs and endpoints, read after the fact with the user's own credentials: AWS access
bounded in time (aws), the recorder's remote evidence (evidence), `smdiag job(s)` (jobs), the preflight
(preflight). Read-only everywhere; boto3 is imported only when a remote call is made."""
