import type { Group } from '../../api/types';
import { StateBadge } from '../../components/StateBadge';
import { Link } from 'react-router';
import { reasonText } from '../../lib/reasons';

function Members({ group }: { group: Group }) {
  return (
    <ol className="members">
      {group.members.map((m) => (
        <li key={m.id}>
          <Link to={`/resources/${m.id}`}>{m.name}</Link>{' '}
          <StateBadge state={m.state} lost={m.visibility === 'lost'} />
          {m.visibility === 'lost' ? <span className="lost-inline"> No visibility</span> : null}
        </li>
      ))}
    </ol>
  );
}

export function GroupTable({
  groups,
  lastKnown = false,
}: {
  groups: Group[];
  lastKnown?: boolean;
}) {
  return (
    <div className="table-wrap">
      <table className="board">
        <caption className="visually-hidden">Resource groups, worst state first</caption>
        <thead>
          <tr>
            <th scope="col">Group</th>
            <th scope="col">State</th>
            <th scope="col">Visibility</th>
            <th scope="col" className="num">
              Tier
            </th>
            <th scope="col">Members, in order</th>
          </tr>
        </thead>
        <tbody>
          {groups.map((g) => {
            const lost = g.status.visibility === 'lost';
            return (
              <tr
                key={g.id}
                className={lost || lastKnown ? 'row-lost' : undefined}
                data-testid={`group-${g.id}`}
              >
                <th scope="row">
                  {g.name}
                  {g.description ? <div className="sub">{g.description}</div> : null}
                </th>
                <td>
                  <StateBadge state={g.status.state} lost={lost} lastKnown={lastKnown} />
                  {g.status.reasons[0] ? (
                    <div className="sub">{reasonText(g.status.reasons[0])}</div>
                  ) : null}
                </td>
                <td>
                  {lost ? (
                    <span className="lost">
                      <strong>
                        <span aria-hidden="true">⊘ </span>No visibility
                      </strong>{' '}
                      of some members
                    </span>
                  ) : (
                    <span className="visible">Visible</span>
                  )}
                </td>
                <td className="num">{g.tier}</td>
                <td>
                  <Members group={g} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
