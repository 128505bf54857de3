import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import { BrowserRouter, Route, Routes } from 'react-router';
import { Layout } from './components/Layout';
import { StatusBoard } from './pages/board/StatusBoard';
import { ResourceDetail } from './pages/resource/ResourceDetail';
import { RequestList } from './pages/requests/RequestList';
import { RequestCreate } from './pages/requests/RequestCreate';
import { RequestDetailPage } from './pages/requests/RequestDetailPage';
import { ExecutionView } from './pages/execution/ExecutionView';
import { NotFound } from './pages/NotFound';
import { ReportsPage } from './pages/reports/ReportsPage';

export const BASENAME = '/app';

/** The screens; wrapped in a router by App (and by tests in a MemoryRouter). */
export function AppRoutes() {
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<StatusBoard />} />
        <Route path="resources/:id" element={<ResourceDetail />} />
        <Route path="requests" element={<RequestList />} />
        <Route path="requests/waiting" element={<RequestList waitingForMe />} />
        <Route path="requests/new" element={<RequestCreate />} />
        <Route path="requests/:id" element={<RequestDetailPage />} />
        <Route path="executions/:id" element={<ExecutionView />} />
        <Route path="reports" element={<ReportsPage />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

export function App({ client }: { client: QueryClient }) {
  return (
    <QueryClientProvider client={client}>
      <BrowserRouter basename={BASENAME}>
        <AppRoutes />
      </BrowserRouter>
    </QueryClientProvider>
  );
}
