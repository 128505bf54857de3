import { useState, type FormEvent } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { ApiError } from '../../api/client';
import { useGroups, useResources, useSites } from '../../api/inventory';
import { hasRole, useMe } from '../../api/me';
import { useCreateRequest } from '../../api/requests';
import { REQUEST_KINDS, type RequestKind, type Resource } from '../../api/types';
import { ActionError } from '../../components/ActionError';
import { Banner } from '../../components/Banner';
import { FieldError } from '../../components/FieldError';
import { StateBadge } from '../../components/StateBadge';
import { humanise } from '../../lib/format';
import { PolicyPreviewPanel } from './PolicyPreviewPanel';
import { usePageTitle } from '../../lib/usePageTitle';

type ScopeType = 'resource' | 'group';

function defaultSite(kind: RequestKind | '', resource?: Resource): string {
  if (!resource) return '';
  return kind === 'failback' ? resource.primary_site : resource.dr_site;
}

export function RequestCreate() {
  usePageTitle('New request');
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const me = useMe();
  const resources = useResources();
  const groups = useGroups();
  const sites = useSites();
  const create = useCreateRequest();

  const [kind, setKind] = useState<RequestKind | ''>('');
  const [scopeType, setScopeType] = useState<ScopeType>(params.get('group') ? 'group' : 'resource');
  const [scopeId, setScopeId] = useState(params.get('group') ?? params.get('resource') ?? '');
  const [site, setSite] = useState('');
  const [ticket, setTicket] = useState('');
  const [reason, setReason] = useState('');

  const resourceList = resources.data?.results ?? [];
  const groupList = groups.data?.results ?? [];
  const chosenResource =
    scopeType === 'resource' ? resourceList.find((r) => String(r.id) === scopeId) : undefined;
  const chosenGroup =
    scopeType === 'group' ? groupList.find((g) => String(g.id) === scopeId) : undefined;
  const scope =
    scopeId === ''
      ? {}
      : scopeType === 'resource'
        ? { resource: Number(scopeId) }
        : { group: Number(scopeId) };
  const targetSite = site || defaultSite(kind, chosenResource);
  const errors = create.error instanceof ApiError ? create.error.fieldErrors : {};
  const notOperator = me.data !== undefined && !hasRole(me.data, 'operator');

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (kind === '' || scopeId === '') return;
    create.mutate(
      {
        kind,
        ...scope,
        target_site: targetSite,
        change_ticket: ticket.trim(),
        reason: reason.trim(),
      },
      { onSuccess: (created) => void navigate(`/requests/${created.id}`) },
    );
  };

  const described = (field: string) =>
    errors[field] ? { 'aria-invalid': true, 'aria-describedby': `err-${field}` } : {};

  return (
    <section aria-labelledby="create-title">
      <h1 id="create-title">New request</h1>
      {notOperator ? (
        <Banner tone="info">
          Only operators may create requests; you can fill the form to see the policy.
        </Banner>
      ) : null}
      <div className="two-col">
        <form className="form panel" onSubmit={submit} noValidate={false}>
          <div className="field">
            <label htmlFor="kind">Kind</label>
            <select
              id="kind"
              required
              value={kind}
              onChange={(e) => setKind(e.target.value as RequestKind | '')}
              {...described('kind')}
            >
              <option value="">Choose…</option>
              {REQUEST_KINDS.map((k) => (
                <option key={k} value={k}>
                  {k === 'drill' ? 'DR drill' : humanise(k)}
                </option>
              ))}
            </select>
            <FieldError id="err-kind" messages={errors.kind} />
          </div>
          <fieldset>
            <legend>Scope</legend>
            {(['resource', 'group'] as const).map((t) => (
              <label key={t} className="radio">
                <input
                  type="radio"
                  name="scope-type"
                  value={t}
                  checked={scopeType === t}
                  onChange={() => {
                    setScopeType(t);
                    setScopeId('');
                  }}
                />{' '}
                {t === 'resource' ? 'One resource' : 'A group (in its order)'}
              </label>
            ))}
            <div className="field">
              <label htmlFor="scope">{scopeType === 'resource' ? 'Resource' : 'Group'}</label>
              <select
                id="scope"
                required
                value={scopeId}
                onChange={(e) => setScopeId(e.target.value)}
                {...described(scopeType)}
              >
                <option value="">Choose…</option>
                {(scopeType === 'resource' ? resourceList : groupList).map((item) => (
                  <option key={item.id} value={item.id}>
                    {item.name} (tier {item.tier})
                  </option>
                ))}
              </select>
              <FieldError id={`err-${scopeType}`} messages={errors[scopeType]} />
            </div>
            {chosenResource ? (
              <p className="meta">
                Now:{' '}
                <StateBadge
                  state={chosenResource.status.state}
                  lost={chosenResource.status.visibility === 'lost'}
                />{' '}
                {chosenResource.primary_site} → {chosenResource.dr_site}
              </p>
            ) : null}
            {chosenGroup ? (
              <p className="meta">
                Now:{' '}
                <StateBadge
                  state={chosenGroup.status.state}
                  lost={chosenGroup.status.visibility === 'lost'}
                />{' '}
                {chosenGroup.members.map((m) => m.name).join(' → ')}
              </p>
            ) : null}
          </fieldset>
          <div className="field">
            <label htmlFor="target-site">Target site</label>
            <select
              id="target-site"
              required
              value={targetSite}
              onChange={(e) => setSite(e.target.value)}
              {...described('target_site')}
            >
              <option value="">Choose…</option>
              {(sites.data?.results ?? []).map((s) => (
                <option key={s.id} value={s.name}>
                  {s.name}
                  {s.region ? ` (${s.region})` : ''}
                </option>
              ))}
            </select>
            <FieldError id="err-target_site" messages={errors.target_site} />
          </div>
          <div className="field">
            <label htmlFor="ticket">Change ticket</label>
            <input
              id="ticket"
              value={ticket}
              onChange={(e) => setTicket(e.target.value)}
              autoComplete="off"
              {...described('change_ticket')}
            />
            <FieldError id="err-change_ticket" messages={errors.change_ticket} />
          </div>
          <div className="field">
            <label htmlFor="reason">Reason</label>
            <textarea
              id="reason"
              required
              rows={3}
              value={reason}
              onChange={(e) => setReason(e.target.value)}
              {...described('reason')}
            />
            <FieldError id="err-reason" messages={errors.reason} />
          </div>
          <FieldError id="err-general" messages={errors.non_field_errors} />
          {create.isError && !(create.error instanceof ApiError && create.error.status === 400) ? (
            <ActionError error={create.error} />
          ) : null}
          <button
            type="submit"
            disabled={
              create.isPending || kind === '' || scopeId === '' || !targetSite || !reason.trim()
            }
          >
            {create.isPending ? 'Creating…' : 'Create request'}
          </button>
        </form>
        <PolicyPreviewPanel kind={kind} scope={scope} />
      </div>
    </section>
  );
}
