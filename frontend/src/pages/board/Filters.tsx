import { ENVIRONMENTS, PLATFORMS, TIERS } from '../../api/types';
import { humanise } from '../../lib/format';
import { type BoardFilters, isFiltered } from './filtering';

const PLATFORM_NAMES: Record<string, string> = {
  postgres: 'PostgreSQL',
  mongodb: 'MongoDB',
  mssql: 'SQL Server',
  snowflake: 'Snowflake',
};

export function platformName(platform: string): string {
  return PLATFORM_NAMES[platform] ?? platform;
}

interface Props {
  filters: BoardFilters;
  sites: string[];
  onChange: (key: keyof BoardFilters, value: string) => void;
  onClear: () => void;
}

function Select({
  id,
  label,
  value,
  options,
  onChange,
}: {
  id: string;
  label: string;
  value: string;
  options: [string, string][];
  onChange: (value: string) => void;
}) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">All</option>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    </div>
  );
}

export function Filters({ filters, sites, onChange, onClear }: Props) {
  return (
    <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
      <div className="field field-search">
        <label htmlFor="board-q">Search</label>
        <input
          id="board-q"
          type="search"
          placeholder="Name, owner or site"
          value={filters.q}
          onChange={(e) => onChange('q', e.target.value)}
        />
      </div>
      <Select
        id="board-state"
        label="State"
        value={filters.state}
        onChange={(v) => onChange('state', v)}
        options={[
          ['red', 'Red'],
          ['yellow', 'Yellow'],
          ['green', 'Green'],
          ['lost', 'No visibility'],
        ]}
      />
      <Select
        id="board-away"
        label="Runs at"
        value={filters.away}
        onChange={(v) => onChange('away', v)}
        options={[
          ['1', 'Away from home'],
          ['0', 'Home site'],
        ]}
      />
      <Select
        id="board-platform"
        label="Platform"
        value={filters.platform}
        onChange={(v) => onChange('platform', v)}
        options={PLATFORMS.map((p) => [p, platformName(p)])}
      />
      <Select
        id="board-tier"
        label="Tier"
        value={filters.tier}
        onChange={(v) => onChange('tier', v)}
        options={TIERS.map((t) => [String(t), `Tier ${t}`])}
      />
      <Select
        id="board-environment"
        label="Environment"
        value={filters.environment}
        onChange={(v) => onChange('environment', v)}
        options={ENVIRONMENTS.map((e) => [e, humanise(e)])}
      />
      <Select
        id="board-site"
        label="Site"
        value={filters.site}
        onChange={(v) => onChange('site', v)}
        options={sites.map((s) => [s, s])}
      />
      <button
        type="button"
        className="button-secondary"
        onClick={onClear}
        disabled={!isFiltered(filters)}
      >
        Clear filters
      </button>
    </form>
  );
}
