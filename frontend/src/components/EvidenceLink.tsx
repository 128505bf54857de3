import { serverHas } from '../api/me';

/** The printable evidence report of a request (GET requests/{id}/evidence/?format=html). */
export function evidenceReportUrl(requestId: number): string {
  return `/api/v1/requests/${requestId}/evidence/?format=html`;
}

/** A plain link to the report (a full page, not a screen of the app: Back returns here). The
 * page's bootstrap data says whether this server has the endpoint, so nothing is probed. */
export function EvidenceLink({ requestId }: { requestId: number }) {
  if (!serverHas('evidence')) {
    return <span className="muted">The evidence report is not available on this server yet.</span>;
  }
  return (
    <a href={evidenceReportUrl(requestId)}>Evidence report for request #{requestId} (printable)</a>
  );
}
