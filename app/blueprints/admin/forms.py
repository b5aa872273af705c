from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from app.models import ROLES

ROLE_CHOICES = [SelectChoice(r, r.capitalize()) for r in ROLES]


class UserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Initial password", validators=[DataRequired(), Length(min=8, max=256)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="operator")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
