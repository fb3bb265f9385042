"""Six realistic fixture projects for bench/scan_savings.py, written on demand.

Each is a few dozen files laid out as such projects are (manifests, packages, templates,
static assets, deployment files, docs), with ordinary code in most files and a few
planted issues of the kinds SAST rules look for, including the seed report's loss cases
(an nginx .conf in a Python repository, Django templates, a backend's few JS files,
secrets in markdown). Generated rather than committed: the repetitive parts (resources,
components, modules) come from one template per kind, varied by name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Files = dict[str, str]

RESOURCES = ("orders", "customers", "invoices", "products", "shipments", "reviews", "coupons", "refunds")


def flask_shop() -> Files:
    """A Flask shop: blueprints, Jinja templates, a little static JS, nginx, compose."""
    files: Files = {
        "requirements.txt": "flask==3.0.3\nflask-sqlalchemy==3.1.1\ngunicorn==22.0.0\nrequests==2.32.3\n",
        "wsgi.py": "from shop import create_app\n\napp = create_app()\n",
        "shop/__init__.py": (
            "from flask import Flask\n\nfrom shop.db import db\n\n\ndef create_app():\n"
            "    app = Flask(__name__)\n    app.config['SECRET_KEY'] = 'dev-secret-change-me'\n"
            "    db.init_app(app)\n    from shop import "
            + ", ".join(RESOURCES)
            + "\n"
            + "".join(f"    app.register_blueprint({r}.bp)\n" for r in RESOURCES)
            + "    return app\n"
        ),
        "shop/db.py": "from flask_sqlalchemy import SQLAlchemy\n\ndb = SQLAlchemy()\n",
        "shop/payments.py": (
            "import hashlib\nimport subprocess\n\nimport requests\n\n\n"
            "def charge(card_token, amount):\n"
            "    return requests.post('https://pay.example.com/charge', json={'t': card_token, 'a': amount},"
            " verify=False)\n\n\ndef receipt_id(order_id):\n    return "
            "hashlib.md5(str(order_id).encode()).hexdigest()\n\n\n"
            "def export(order_id):\n    return subprocess.check_output(f'./export.sh {order_id}', "
            "shell=True)\n"
        ),
        "shop/templates/base.html": (
            "<!doctype html>\n<html><head><script src='/static/js/cart.js'></script></head>\n"
            "<body>{% block content %}{% endblock %}</body></html>\n"
        ),
        "shop/templates/search.html": (
            "{% extends 'base.html' %}\n{% block content %}<p>Results for {{ query|safe }}</p>"
            "<script>var q = '{{ query }}';</script>{% endblock %}\n"
        ),
        "shop/static/js/cart.js": (
            "function renderCart(items) {\n  const el = document.getElementById('cart');\n"
            "  el.innerHTML = items.map((i) => '<li>' + i.name + '</li>').join('');\n}\n"
        ),
        "shop/static/js/search.js": (
            "function go(form) {\n  const q = form.q.value;\n  window.location.href = '/search?q=' + q;\n}\n"
        ),
        "shop/static/css/site.css": "body { font-family: sans-serif; }\n",
        "deploy/shop.conf": (
            "server {\n    listen 443 ssl;\n    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;\n"
            "    location /static {\n        alias /srv/shop/static/;\n    }\n"
            "    location /api {\n        add_header X-Frame-Options DENY;\n        proxy_pass "
            "http://app:8000;\n    }\n}\n"
        ),
        "Dockerfile": (
            "FROM python:latest\nWORKDIR /srv\nCOPY . .\nRUN pip install -r requirements.txt\n"
            'CMD ["gunicorn", "wsgi:app"]\n'
        ),
        "docker-compose.yml": (
            "services:\n  app:\n    build: .\n    privileged: true\n  db:\n    image: postgres:16\n"
            "    environment:\n      POSTGRES_PASSWORD: 'hunter2hunter2'\n"
        ),
        "README.md": (
            "# Shop\n\n`docker compose up`. Deploy notes: the payment sandbox key is sk_live_"
            "4eC39HqLyjWDarjtT1zdp7dc (rotate before launch).\n"
        ),
        "docs/operations.md": "# Operations\n\nAlerts go to "
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXXX1234567890abcdef\n",
        "tests/test_orders.py": "def test_orders(client):\n    assert "
        "client.get('/orders/').status_code == 200\n",
        "scripts/seed.py": "import random\n\nprint([random.randint(1, 9) for _ in range(10)])\n",
    }
    for r in RESOURCES:
        files[f"shop/{r}.py"] = (
            "from flask import Blueprint, jsonify, request\n\nfrom shop.db import db\n\n"
            f"bp = Blueprint('{r}', __name__, url_prefix='/{r}')\n\n\n"
            f"@bp.get('/')\ndef list_{r}():\n    page = int(request.args.get('page', 1))\n"
            f"    return jsonify(page=page, items=[])\n\n\n"
            f"@bp.get('/<int:item_id>')\ndef get_{r}(item_id):\n    return jsonify(id=item_id)\n"
        )
        files[f"shop/templates/{r}/list.html"] = (
            "{% extends 'base.html' %}\n{% block content %}<ul>{% for i in items %}<li>{{ i.name }}</li>"
            "{% endfor %}</ul>{% endblock %}\n"
        )
        files[f"tests/test_{r}.py"] = (
            f"def test_{r}(client):\n    assert client.get('/{r}/').status_code == 200\n"
        )
    files["shop/orders.py"] += (
        "\n\n@bp.get('/search')\ndef search():\n    from sqlalchemy import text\n\n"
        "    q = request.args['q']\n    return jsonify(list(db.session.execute(text(f\"SELECT * "
        "FROM orders WHERE note LIKE '{q}'\"))))\n"
    )
    return files


def django_blog() -> Files:
    """A Django site: apps with models/views/urls/templates, jQuery static files."""
    apps = ("blog", "accounts", "comments", "newsletter", "search")
    files: Files = {
        "requirements.txt": "Django==5.0.6\npsycopg[binary]==3.1.19\ncelery==5.4.0\n",
        "manage.py": (
            "#!/usr/bin/env python\nimport os\nimport sys\n\nif __name__ == '__main__':\n"
            "    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_cfg.settings')\n"
            "    from django.core.management import execute_from_command_line\n\n"
            "    execute_from_command_line(sys.argv)\n"
        ),
        "site_cfg/__init__.py": "",
        "site_cfg/settings.py": (
            "DEBUG = True\nSECRET_KEY = 'django-insecure-0123456789'\nALLOWED_HOSTS = ['*']\n"
            f"INSTALLED_APPS = {list(apps)!r}\n"
        ),
        "site_cfg/urls.py": "from django.urls import include, path\n\nurlpatterns = ["
        + ", ".join(f"path('{a}/', include('{a}.urls'))" for a in apps)
        + "]\n",
        "site_cfg/wsgi.py": "from django.core.wsgi import get_wsgi_application\n\napplication = "
        "get_wsgi_application()\n",
        "templates/base.html": (
            "<!doctype html><html><head><script src='/static/js/jquery.min.js'></script>"
            "<script src='/static/js/site.js'></script></head><body>{% block content %}{% endblock "
            "%}</body></html>\n"
        ),
        "static/js/site.js": (
            "$(function () {\n  $('#flash').html(window.location.hash.slice(1));\n"
            "  if (Math.random() > 0.5) { $('#tip').show(); }\n});\n"
        ),
        "static/js/comments.js": "function preview(text) {\n  $('#preview').html(text);\n}\n",
        "static/css/site.css": "body { margin: 0; }\n",
        "blog/templatetags/__init__.py": "",
        "blog/templatetags/markup.py": (
            "from django import template\nfrom django.utils.safestring import mark_safe\n\n"
            "register = template.Library()\n\n\n@register.filter\ndef markdownify(text):\n"
            "    return mark_safe(text.replace('\\n', '<br>'))\n"
        ),
        "README.md": "# Blog\n\n`python manage.py runserver`\n",
        "Dockerfile": "FROM python:3.12-slim\nCOPY . /app\nRUN pip install -r "
        "/app/requirements.txt\nUSER app\nCMD python manage.py runserver\n",
    }
    for a in apps:
        model = a.capitalize().rstrip("s")
        files[f"{a}/__init__.py"] = ""
        files[f"{a}/models.py"] = (
            f"from django.db import models\n\n\nclass {model}(models.Model):\n"
            "    title = models.CharField(max_length=200)\n    body = models.TextField()\n"
        )
        files[f"{a}/views.py"] = (
            f"from django.shortcuts import get_object_or_404, render\n\nfrom {a}.models import {model}\n\n\n"
            f"def detail(request, pk):\n    obj = get_object_or_404({model}, pk=pk)\n"
            f"    return render(request, '{a}/detail.html', {{'obj': obj}})\n"
        )
        files[f"{a}/urls.py"] = (
            f"from django.urls import path\n\nfrom {a} import views\n\nurlpatterns = "
            f"[path('<int:pk>/', views.detail)]\n"
        )
        files[f"{a}/admin.py"] = (
            f"from django.contrib import admin\n\nfrom {a}.models import "
            f"{model}\n\nadmin.site.register({model})\n"
        )
        files[f"{a}/tests.py"] = (
            "from django.test import TestCase\n\n\nclass Smoke(TestCase):\n    def test_ok(self):\n "
            "       self.assertTrue(True)\n"
        )
        files[f"{a}/templates/{a}/detail.html"] = (
            "{% extends 'base.html' %}\n{% block content %}<h1>{{ obj.title }}</h1>"
            "<div>{{ obj.body|safe }}</div>{% endblock %}\n"
        )
    files["search/views.py"] += (
        "\n\ndef query(request):\n    from django.views.decorators.csrf import csrf_exempt  # noqa\n"
        "    term = request.GET['q']\n"
        "    return render(request, 'search/detail.html', {'obj': Search.objects.raw(f\"SELECT * "
        "FROM search_search WHERE title = '{term}'\")})\n"
    )
    files["accounts/views.py"] += (
        "\n\nfrom django.views.decorators.csrf import csrf_exempt\n\n\n@csrf_exempt\ndef logout(request):\n"
        "    return render(request, 'accounts/detail.html', {})\n"
    )
    return files


def react_dashboard() -> Files:
    """A React + TypeScript SPA built with Vite."""
    widgets = ("Revenue", "Signups", "Churn", "Latency", "Errors", "Queue", "Storage", "Billing")
    files: Files = {
        "package.json": (
            '{\n  "name": "ops-dashboard",\n  "private": true,\n  "type": "module",\n'
            '  "scripts": {"dev": "vite", "build": "tsc && vite build", "test": "vitest"},\n'
            '  "dependencies": {"react": "^18.3.1", "react-dom": "^18.3.1", "react-router-dom": "^6.23.1"},\n'
            '  "devDependencies": {"typescript": "^5.4.5", "vite": "^5.2.0", "vitest": "^1.6.0"}\n}\n'
        ),
        "tsconfig.json": '{"compilerOptions": {"jsx": "react-jsx", "strict": true, "module": "ESNext"}}\n',
        "vite.config.ts": "import { defineConfig } from 'vite';\n\nexport default defineConfig({});\n",
        "index.html": "<!doctype html><html><body><div id='root'></div><script type='module' "
        "src='/src/main.tsx'></script></body></html>\n",
        "src/main.tsx": (
            "import React from 'react';\nimport { createRoot } from 'react-dom/client';\nimport App "
            "from './App';\n\n"
            "createRoot(document.getElementById('root')!).render(<App />);\n"
        ),
        "src/App.tsx": "import React from 'react';\n"
        + "".join(f"import {w} from './widgets/{w}';\n" for w in widgets)
        + "\nexport default function App() {\n  return (<main>"
        + "".join(f"<{w} />" for w in widgets)
        + "</main>);\n}\n",
        "src/api/client.ts": (
            "export async function get<T>(path: string): Promise<T> {\n"
            "  const res = await fetch('/api' + path, { credentials: 'include' });\n  return "
            "res.json() as Promise<T>;\n}\n"
        ),
        "src/lib/ids.ts": "export function requestId(): string {\n  return "
        "Math.random().toString(36).slice(2);\n}\n",
        "src/lib/redirect.ts": (
            "export function afterLogin(url: URL) {\n  window.location.href = "
            "url.searchParams.get('next');\n}\n"
        ),
        "src/components/Markdown.tsx": (
            "import React from 'react';\n\nexport default function Markdown({ doc }: { doc: { html: "
            "string } }) {\n"
            "  return <div dangerouslySetInnerHTML={{__html: doc.html}} />;\n}\n"
        ),
        "src/components/UserLink.tsx": (
            "import React from 'react';\n\nexport default function UserLink({ user }: { user: { "
            "site: string } }) {\n"
            "  return <a href={user.site} />;\n}\n"
        ),
        "src/styles/app.css": "main { display: grid; }\n",
        "README.md": "# Ops dashboard\n\n`npm run dev`\n",
        ".github/workflows/ci.yml": (
            "name: ci\non: [push, pull_request]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - uses: actions/checkout@v4\n      - run: npm ci && npm test\n"
        ),
    }
    for w in widgets:
        files[f"src/widgets/{w}.tsx"] = (
            f"import React, {{ useEffect, useState }} from 'react';\nimport {{ get }} from "
            f"'../api/client';\n\n"
            f"export default function {w}() {{\n  const [value, setValue] = useState<number | null>(null);\n"
            f"  useEffect(() => "
            f"{{ get<{{ value: number }}>('/metrics/{w.lower()}').then((r) => setValue(r.value)); }}, []);\n"
            f"  return <section className='widget'><h2>{w}</h2><p>{{value ?? '…'}}</p></section>;\n}}\n"
        )
        files[f"src/widgets/{w}.test.tsx"] = (
            f"import {{ describe, it, expect }} from 'vitest';\nimport {w} from './{w}';\n\n"
            f"describe('{w}', () => {{ it('renders', () => {{ expect({w}).toBeDefined(); }}); }});\n"
        )
        files[f"src/hooks/use{w}.ts"] = (
            f"import {{ useState }} from 'react';\n\nexport function use{w}() {{\n"
            f"  const [state] = useState(0);\n  return state === state ? state : 0;\n}}\n"
        )
    return files


def express_api() -> Files:
    """A Node.js Express API with Sequelize, JWT auth, Docker and Kubernetes files."""
    routes = ("users", "orders", "payments", "products", "carts", "webhooks", "reports")
    files: Files = {
        "package.json": (
            '{\n  "name": "orders-api",\n  "main": "src/server.js",\n  "scripts": {"start": "node '
            'src/server.js"},\n'
            '  "dependencies": {"express": "^4.19.2", "sequelize": "^6.37.3", "jsonwebtoken": "^9.0.2",'
            ' "cors": "^2.8.5", "helmet": "^7.1.0", "pg": "^8.11.5"}\n}\n'
        ),
        "src/server.js": (
            "const express = require('express');\nconst cors = require('cors');\nconst app = express();\n"
            "app.use(cors({origin: '*', credentials: true}));\napp.use(express.json());\n"
            + "".join(f"app.use('/{r}', require('./routes/{r}'));\n" for r in routes)
            + "app.listen(process.env.PORT || 3000);\n"
        ),
        "src/db.js": (
            "const { Sequelize } = require('sequelize');\n"
            "module.exports = new Sequelize(process.env.DATABASE_URL, { logging: false });\n"
        ),
        "src/auth.js": (
            "const jwt = require('jsonwebtoken');\n\nfunction issue(user) {\n"
            "  return jwt.sign({ sub: user.id }, 'super-secret-signing-key', { expiresIn: '1h' });\n}\n\n"
            "function check(req, res, next) {\n  try {\n    req.user = "
            "jwt.verify(req.headers.authorization, process.env.JWT_KEY);\n"
            "    next();\n  } catch (e) {\n    res.status(401).send(e.stack);\n  "
            "}\n}\n\nmodule.exports = { issue, check };\n"
        ),
        "src/util/exec.js": (
            "const child_process = require('child_process');\n\n"
            "module.exports = function convert(req, res) {\n  child_process.exec('convert ' + "
            "req.query.file, () => res.end());\n};\n"
        ),
        "Dockerfile": (
            "FROM node:20\nWORKDIR /app\nCOPY package.json .\nRUN curl -fsSL "
            "https://example.com/install.sh | bash\n"
            'RUN npm ci\nCOPY . .\nCMD ["node", "src/server.js"]\n'
        ),
        "k8s/deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: orders-api\nspec:\n  "
            "template:\n    spec:\n"
            "      hostNetwork: true\n      containers:\n        - name: api\n          image: "
            "acme/orders-api:2.1.0\n"
            "          securityContext:\n            privileged: true\n"
        ),
        "k8s/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: orders-api\nspec:\n  "
        "ports:\n    - port: 80\n",
        "README.md": "# Orders API\n\nSet `DATABASE_URL`, then `npm start`.\n",
        ".env.example": "DATABASE_URL=postgres://orders:orders@localhost/orders\nJWT_KEY=\n",
    }
    for r in routes:
        model = r.capitalize().rstrip("s")
        files[f"src/routes/{r}.js"] = (
            "const express = require('express');\nconst db = require('../db');\nconst { check } = "
            "require('../auth');\n"
            "const router = express.Router();\n\n"
            f"router.get('/', check, async (req, res) => "
            f"{{\n  res.json(await db.models.{model}.findAll());\n}});\n\n"
            f"router.get('/:id', check, async (req, res) => "
            f"{{\n  res.json(await db.models.{model}.findByPk(req.params.id));\n}});\n\n"
            "module.exports = router;\n"
        )
        files[f"src/models/{r}.js"] = (
            "const { DataTypes } = require('sequelize');\nconst db = require('../db');\n\n"
            f"module.exports = db.define('{model}', "
            f"{{ name: DataTypes.STRING, total: DataTypes.INTEGER }});\n"
        )
        files[f"src/services/{r}.js"] = (
            f"const {model} = require('../models/{r}');\n\n"
            f"async function summary() {{\n  const rows = await {model}.findAll();\n"
            "  return { count: rows.length, total: rows.reduce((s, r) => s + r.total, 0) };\n}\n\n"
            "module.exports = { summary };\n"
        )
        files[f"test/{r}.test.js"] = (
            f"const request = require('supertest');\n\ntest('{r}', async () => "
            f"{{ expect(request).toBeDefined(); }});\n"
        )
    files["src/routes/reports.js"] += (
        "\nrouter.get('/raw/:id', async (req, res) => {\n"
        "  res.json(await db.query('SELECT * FROM reports WHERE id = ' + req.params.id));\n});\n"
        "\nrouter.get('/go', (req, res) => res.redirect(req.query.next));\n"
    )
    return files


def terraform_platform() -> Files:
    """Terraform modules (AWS), Kubernetes manifests, a Helm chart, CI, shell scripts."""
    modules = ("network", "database", "cache", "queue", "storage", "dns", "monitoring")
    files: Files = {
        "versions.tf": (
            'terraform {\n  required_providers {\n    aws = {\n      source  = "hashicorp/aws"\n'
            '      version = "~> 5.0"\n    }\n  }\n}\n'
        ),
        "main.tf": 'provider "aws" {\n  region = var.region\n}\n\n'
        + "".join(
            f'module "{m}" {{\n  source = "./modules/{m}"\n  env    = var.env\n}}\n\n' for m in modules
        ),
        "variables.tf": 'variable "region" {\n  default = "eu-west-1"\n}\n\nvariable "env" {\n  '
        'default = "prod"\n}\n',
        "charts/api/Chart.yaml": "apiVersion: v2\nname: api\nversion: 0.3.1\n",
        "charts/api/values.yaml": "replicaCount: 3\nimage:\n  repository: acme/api\n  tag: 1.9.0\n",
        "charts/api/templates/deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n "
            " template:\n"
            "    spec:\n      containers:\n        - name: api\n          image: acme/api\n"
            "          securityContext:\n            runAsNonRoot: false\n"
        ),
        "k8s/ingress.yaml": "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: edge\n",
        "k8s/daemonset.yaml": (
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: node-agent\nspec:\n  template:\n"
            "    spec:\n      hostNetwork: true\n      containers:\n        - name: agent\n         "
            " image: acme/agent:0.4\n"
        ),
        ".github/workflows/plan.yml": (
            "name: plan\non: pull_request\njobs:\n  plan:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - uses: actions/checkout@v4\n"
            '      - run: echo "${{ github.event.pull_request.title }}"\n'
            "      - run: terraform init && terraform plan\n"
        ),
        "scripts/bootstrap.sh": "#!/bin/bash\nset -euo pipefail\ncurl -fsSL "
        "https://get.example.com/tool | bash\n",
        "scripts/rotate-keys.sh": "#!/bin/bash\naws iam create-access-key --user-name deploy\n",
        "README.md": "# Platform\n\n`terraform init && terraform apply`. CI token: "
        "ghp_0123456789abcdefghijABCDEFGHIJ012345 (revoked).\n",
    }
    for m in modules:
        files[f"modules/{m}/main.tf"] = (
            f'resource "aws_cloudwatch_log_group" "{m}" {{\n  name              = "/platform/{m}"\n'
            "  retention_in_days = 30\n}\n"
        )
        files[f"modules/{m}/variables.tf"] = 'variable "env" {\n  type = string\n}\n'
        files[f"modules/{m}/outputs.tf"] = (
            f'output "{m}_log_group" {{\n  value = aws_cloudwatch_log_group.{m}.name\n}}\n'
        )
        files[f"modules/{m}/README.md"] = f"# {m}\n\nInputs: `env`.\n"
    files["modules/network/main.tf"] += (
        'resource "aws_security_group" "bastion" {\n  name = "bastion"\n  ingress {\n    from_port   = 22\n'
        '    to_port     = 22\n    protocol    = "tcp"\n    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n'
    )
    files["modules/database/main.tf"] += (
        'resource "aws_db_instance" "main" {\n  engine            = "postgres"\n  instance_class    '
        '= "db.t3.micro"\n'
        "  storage_encrypted = false\n}\n"
    )
    files["modules/storage/main.tf"] += (
        'resource "aws_s3_bucket_acl" "public" {\n  bucket = "acme-public"\n  acl    = "public-read"\n}\n'
    )
    return files


def android_app() -> Files:
    """An Android app in Kotlin and Java with Gradle, a manifest and resources."""
    screens = ("Login", "Home", "Profile", "Settings", "Orders", "Cart", "Checkout", "Search")
    pkg = "app/src/main/java/com/acme/shop"
    files: Files = {
        "settings.gradle": "include ':app'\nrootProject.name = 'AcmeShop'\n",
        "build.gradle": "plugins {\n    id 'com.android.application' version '8.4.0' apply false\n}\n",
        "app/build.gradle": (
            "plugins {\n    id 'com.android.application'\n    id 'org.jetbrains.kotlin.android'\n}\n\n"
            "dependencies {\n    implementation 'androidx.appcompat:appcompat:1.7.0'\n"
            "    implementation 'com.squareup.okhttp3:okhttp:4.12.0'\n}\n"
        ),
        "app/src/main/AndroidManifest.xml": (
            '<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="com.acme.shop">\n'
            '  <application android:usesCleartextTraffic="true" android:allowBackup="true">\n'
            '    <activity android:name=".LoginActivity" android:exported="true"/>\n  '
            "</application>\n</manifest>\n"
        ),
        f"{pkg}/net/Api.kt": (
            "package com.acme.shop.net\n\nimport java.security.MessageDigest\n\n"
            "object Api {\n    fun sign(body: String): ByteArray = "
            'MessageDigest.getInstance("MD5").digest(body.toByteArray())\n}\n'
        ),
        f"{pkg}/store/Prefs.kt": (
            "package com.acme.shop.store\n\nimport android.content.Context\n\n"
            "class Prefs(private val context: Context) {\n"
            '    val prefs = context.getSharedPreferences("session", Context.MODE_WORLD_READABLE)\n}\n'
        ),
        f"{pkg}/web/HelpActivity.java": (
            "package com.acme.shop.web;\n\nimport android.webkit.WebView;\n\npublic class HelpActivity {\n"
            "    void show(WebView view, String url) {\n        "
            "view.getSettings().setJavaScriptEnabled(true);\n"
            "        view.loadUrl(url);\n    }\n}\n"
        ),
        f"{pkg}/crypto/Tokens.java": (
            "package com.acme.shop.crypto;\n\nimport javax.crypto.Cipher;\nimport java.util.Random;\n\n"
            "public class Tokens {\n    Cipher cipher() throws Exception {\n"
            '        return Cipher.getInstance("AES/ECB/PKCS5Padding");\n    }\n\n'
            "    int nonce() {\n        return new java.util.Random().nextInt();\n    }\n}\n"
        ),
        "README.md": "# Acme Shop for Android\n\n`./gradlew assembleDebug`\n",
    }
    for s in screens:
        files[f"{pkg}/ui/{s}Activity.kt"] = (
            f"package com.acme.shop.ui\n\nimport android.os.Bundle\nimport "
            f"androidx.appcompat.app.AppCompatActivity\n\n"
            f"class {s}Activity : AppCompatActivity() {{\n    override fun onCreate(state: Bundle?) {{\n"
            f"        super.onCreate(state)\n        "
            f"setContentView(R.layout.activity_{s.lower()})\n    }}\n}}\n"
        )
        files[f"{pkg}/ui/{s}ViewModel.kt"] = (
            f"package com.acme.shop.ui\n\nclass {s}ViewModel "
            f"{{\n    var loading = false\n    fun refresh() {{ loading = true }}\n}}\n"
        )
        files[f"app/src/main/res/layout/activity_{s.lower()}.xml"] = (
            '<LinearLayout xmlns:android="http://schemas.android.com/apk/res/android"\n'
            '    android:layout_width="match_parent" android:layout_height="match_parent"/>\n'
        )
        files[f"app/src/test/java/com/acme/shop/{s}Test.kt"] = (
            f"package com.acme.shop\n\nimport org.junit.Test\n\nclass {s}Test "
            f"{{\n    @Test fun works() {{ assert(true) }}\n}}\n"
        )
    return files


PROJECTS: dict[str, Callable[[], Files]] = {
    "flask-shop": flask_shop,
    "django-blog": django_blog,
    "react-dashboard": react_dashboard,
    "express-api": express_api,
    "terraform-platform": terraform_platform,
    "android-app": android_app,
}


def write_project(name: str, root: Path) -> Path:
    """Write one fixture project under ``root``; its folder."""
    folder = root / name
    for rel, text in PROJECTS[name]().items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder
